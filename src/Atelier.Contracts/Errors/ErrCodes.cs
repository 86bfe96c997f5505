namespace Atelier.Contracts.Errors;

/// <summary>
/// The secondary codes of the error envelope (<c>errCode</c>): which rule, inside a catalog code, refused the request.
/// Clients may branch on them; each is listed with its meaning in docs/api.md. Some envelopes carry a value that is not
/// one of these: a job's state, a model file's sync state, or a database error (<c>sqlite_N</c>, <c>postgres_SQLSTATE</c>).
/// </summary>
public static class ErrCodes
{
    /// <summary>The account named in the path does not exist in this tenant.</summary>
    public const string AccountNotFound = "account_not_found";

    /// <summary>URL test: the host resolves only to private, loopback or reserved addresses.</summary>
    public const string Address = "address";

    /// <summary>The model alias is already used by another model of the tenant.</summary>
    public const string AliasTaken = "alias_taken";

    /// <summary>The app id in the path is not the caller's app.</summary>
    public const string AppMismatch = "app_mismatch";

    /// <summary>The body could not be read as the route's JSON shape (wrong type, malformed JSON).</summary>
    public const string Binding = "binding";

    /// <summary>A job id submitted again with another body.</summary>
    public const string BodyDiffers = "body_differs";

    /// <summary>The body is larger than the route allows.</summary>
    public const string BodyTooLarge = "body_too_large";

    /// <summary>A job ended because its owner canceled it (also what a worker reports when it stopped on a cancel request).</summary>
    public const string Canceled = "canceled";

    /// <summary>Content safety: the moderation endpoint failed; the request is refused (fails closed).</summary>
    public const string CheckerFailed = "checker_failed";

    /// <summary>Content safety: the patterns or the moderation endpoint took too long; refused (fails closed).</summary>
    public const string CheckerTimeout = "checker_timeout";

    /// <summary>Entitlement: the scope already has its limit of queued or running jobs.</summary>
    public const string ConcurrentJobs = "concurrent_jobs";

    /// <summary>URL test: no connection could be made.</summary>
    public const string Connect = "connect";

    /// <summary>A model file's content is not the format its extension says.</summary>
    public const string ContentMismatch = "content_mismatch";

    /// <summary>The credential is not a well-formed Atelier credential.</summary>
    public const string CredentialMalformed = "credential_malformed";

    /// <summary>The credential is well formed but unknown.</summary>
    public const string CredentialUnknown = "credential_unknown";

    /// <summary>Entitlement: fewer image credits left than the job needs.</summary>
    public const string Credits = "credits";

    /// <summary>Readiness: the database does not answer.</summary>
    public const string DbUnreachable = "db_unreachable";

    /// <summary>The tenant defaults file is not valid.</summary>
    public const string DefaultsInvalid = "defaults_invalid";

    /// <summary>The server's storage is full.</summary>
    public const string DiskFull = "disk_full";

    /// <summary>URL test: the host does not resolve.</summary>
    public const string Dns = "dns";

    /// <summary>A model file's download failed.</summary>
    public const string DownloadFailed = "download_failed";

    /// <summary>A session's expiry is too early or too late.</summary>
    public const string ExpiredAt = "expired_at";

    /// <summary>The tenant defaults file does not exist.</summary>
    public const string FileNotFound = "file_not_found";

    /// <summary>A lease's hot list does not have one entry per registered slot.</summary>
    public const string HotRequestInfo = "hot_request_info";

    /// <summary>URL test: the HTTP exchange failed.</summary>
    public const string Http = "http";

    /// <summary>A request answered with an HTTP status that has no more specific code.</summary>
    public const string HttpStatus = "http_status";

    /// <summary>The body sets an id that the server assigns.</summary>
    public const string IdAssignedByServer = "id_assigned_by_server";

    /// <summary>An update tries to change a resource's id.</summary>
    public const string IdChange = "id_change";

    /// <summary>An image batch names no image ids.</summary>
    public const string Ids = "ids";

    /// <summary>The generated image does not exist or is not visible to the caller.</summary>
    public const string ImageNotFound = "image_not_found";

    /// <summary>A signed image URL is expired or its signature is wrong.</summary>
    public const string ImageUrl = "image_url";

    /// <summary>An unexpected server error (logged with the request id).</summary>
    public const string Internal = "internal";

    /// <summary>The job does not exist or is not visible to the caller.</summary>
    public const string JobNotFound = "job_not_found";

    /// <summary>Entitlement: the scope submitted its limit of jobs in the current period.</summary>
    public const string JobsPerPeriod = "jobs_per_period";

    /// <summary>A JSON schema is not valid JSON.</summary>
    public const string JsonParse = "json_parse";

    /// <summary>The platform or worker key was revoked.</summary>
    public const string KeyRevoked = "key_revoked";

    /// <summary>A model file is not the kind of model the request asks for.</summary>
    public const string KindMismatch = "kind_mismatch";

    /// <summary>Another replica or request holds a lock this operation needs, past its wait (<c>s_common_lockfail</c>, with <c>Retry-After</c>).</summary>
    public const string LockBusy = "lock_busy";

    /// <summary>The route exists but not with this HTTP method.</summary>
    public const string MethodNotAllowed = "method_not_allowed";

    /// <summary>The session's mode does not match the resource config's.</summary>
    public const string ModeMismatch = "mode_mismatch";

    /// <summary>The model does not exist in the tenant.</summary>
    public const string ModelNotFound = "model_not_found";

    /// <summary>The model version does not exist in the tenant.</summary>
    public const string ModelVersionNotFound = "model_version_not_found";

    /// <summary>Content safety: the moderation endpoint flagged the prompt.</summary>
    public const string Moderation = "moderation";

    /// <summary>Content safety: the moderation endpoint flagged a generated image (the images are deleted).</summary>
    public const string ModerationImage = "moderation_image";

    /// <summary>No checkpoint could be chosen for the job.</summary>
    public const string NoCheckpoint = "no_checkpoint";

    /// <summary>No route has this path.</summary>
    public const string NoRoute = "no_route";

    /// <summary>Studio: a dedicated session's instance answered an error status for its page.</summary>
    public const string HtmlStatus = "html_status";

    /// <summary>Studio: a dedicated session's instance answered something else than HTML for its page.</summary>
    public const string HtmlType = "html_type";

    /// <summary>Studio: a dedicated session has no instance (never connected, or it could not be made).</summary>
    public const string InstanceMissing = "instance_missing";

    /// <summary>Studio: a dedicated session's instance could not be started or leased.</summary>
    public const string InstanceUnavailable = "instance_unavailable";

    /// <summary>Studio: a dedicated session's instance did not answer for its page.</summary>
    public const string InstanceUnreachable = "instance_unreachable";

    /// <summary>A job has no live preview now (none sent yet, or the job is not running).</summary>
    public const string NoPreview = "no_preview";

    /// <summary>A worker asked for a file (by SHA-256) that is not a stored file of its leased job's model version.</summary>
    public const string NotAJobFile = "not_a_job_file";

    /// <summary>The route needs an API token, and the caller is another kind of credential.</summary>
    public const string NotAToken = "not_a_token";

    /// <summary>The model file is not downloaded yet.</summary>
    public const string NotDownloaded = "not_downloaded";

    /// <summary>The worker id is not registered with this key (register first).</summary>
    public const string NotRegistered = "not_registered";

    /// <summary>The record exists but its stored object does not.</summary>
    public const string ObjectMissing = "object_missing";

    /// <summary>The operator id is not registered for the tenant.</summary>
    public const string OperatorNotRegistered = "operator_not_registered";

    /// <summary>The page size is larger than the largest page.</summary>
    public const string PageSizeCap = "page_size_cap";

    /// <summary>Content safety: the prompt matches a refused pattern.</summary>
    public const string Pattern = "pattern";

    /// <summary>Only the platform admin may set this.</summary>
    public const string PlatformOnly = "platform_only";

    /// <summary>Too many requests from this caller; see Retry-After.</summary>
    public const string RateLimited = "rate_limited";

    /// <summary>The resource config does not exist.</summary>
    public const string ResourceConfigNotFound = "resource_config_not_found";

    /// <summary>The job's result is past its retention.</summary>
    public const string ResultExpired = "result_expired";

    /// <summary>The caller's role may not use this model version.</summary>
    public const string Role = "role";

    /// <summary>A JSON schema is valid JSON but not a valid schema.</summary>
    public const string SchemaViolation = "schema_violation";

    /// <summary>The credential's scopes do not include this route.</summary>
    public const string Scope = "scope";

    /// <summary>A secret was sent in the query string; send it in a header.</summary>
    public const string SecretInQuery = "secret_in_query";

    /// <summary>The key that encrypts webhook secrets is not available.</summary>
    public const string SecretKeyUnavailable = "secret_key_unavailable";

    /// <summary>The session is being changed by another request; retry.</summary>
    public const string SessionContended = "session_contended";

    /// <summary>The session was ended.</summary>
    public const string SessionEnded = "session_ended";

    /// <summary>The session is past its expiry.</summary>
    public const string SessionExpired = "session_expired";

    /// <summary>The session does not exist or is not visible to the caller.</summary>
    public const string SessionNotFound = "session_not_found";

    /// <summary>The session belongs to another token.</summary>
    public const string SessionNotOfToken = "session_not_of_token";

    /// <summary>The token's session seconds are used up.</summary>
    public const string SessionSecondsCap = "session_seconds_cap";

    /// <summary>Worker protocol: the attempt is no longer the job's (its lease expired and another took it, or the job ended).</summary>
    public const string StaleAttempt = "stale_attempt";

    /// <summary>Deleting stored images failed.</summary>
    public const string StorageDelete = "storage_delete";

    /// <summary>A tenant admin may divide the tenant's allowance, not raise it.</summary>
    public const string TenantAllowance = "tenant_allowance";

    /// <summary>The tenant does not exist.</summary>
    public const string TenantNotFound = "tenant_not_found";

    /// <summary>The tenant has not been initialized.</summary>
    public const string TenantNotInitialized = "tenant_not_initialized";

    /// <summary>The tenant is not active (suspended or deleted).</summary>
    public const string TenantState = "tenant_state";

    /// <summary>URL test: no answer within the timeout.</summary>
    public const string Timeout = "timeout";

    /// <summary>URL test: the TLS handshake failed.</summary>
    public const string Tls = "tls";

    /// <summary>The API token is disabled.</summary>
    public const string TokenDisabled = "token_disabled";

    /// <summary>The API token is past its expiry.</summary>
    public const string TokenExpired = "token_expired";

    /// <summary>The session's token no longer exists.</summary>
    public const string TokenMissing = "token_missing";

    /// <summary>The API token does not exist.</summary>
    public const string TokenNotFound = "token_not_found";

    /// <summary>The API token was revoked.</summary>
    public const string TokenRevoked = "token_revoked";

    /// <summary>The worker key has registered its most worker ids.</summary>
    public const string TooManyWorkers = "too_many_workers";

    /// <summary>The session mode is not one Atelier knows.</summary>
    public const string UnknownMode = "unknown_mode";

    /// <summary>The request names tags that do not exist.</summary>
    public const string UnknownTags = "unknown_tags";

    /// <summary>The body's content type is not the one the route takes.</summary>
    public const string UnsupportedMediaType = "unsupported_media_type";

    /// <summary>An upload's content does not match what was declared.</summary>
    public const string UploadMismatch = "upload_mismatch";

    /// <summary>The upload type is not one Atelier takes.</summary>
    public const string UploadType = "upload_type";

    /// <summary>URL test: the URL is not usable.</summary>
    public const string Url = "url";

    /// <summary>Content safety: the prompt contains a refused word.</summary>
    public const string Word = "word";

    /// <summary>A custom domain's certificate or private key is missing or unusable.</summary>
    public const string CertificateInvalid = "certificate_invalid";

    /// <summary>The function named in the path does not exist in that service of the tenant.</summary>
    public const string FunctionNotFound = "function_not_found";

    /// <summary>The function's backend state is not (yet) what was asked for: it is deploying or failed.</summary>
    public const string FunctionNotSynced = "function_not_synced";

    /// <summary>An update by template gave no instance parameters.</summary>
    public const string InstanceParametersMissing = "instance_parameters_missing";

    /// <summary>The kube config named (or needed by a kubernetes region) does not exist.</summary>
    public const string KubeConfigNotFound = "kube_config_not_found";

    /// <summary>The region named does not exist.</summary>
    public const string RegionNotFound = "region_not_found";

    /// <summary>The service named in the path does not exist in the tenant.</summary>
    public const string ServiceNotFound = "service_not_found";

    /// <summary>The function template named does not exist.</summary>
    public const string TemplateNotFound = "template_not_found";

    /// <summary>An async invocation's stored result cannot be read from the object store.</summary>
    public const string AsyncResultUnreadable = "async_result_unreadable";

    /// <summary>A computing pool names no region, or a region that is not a runtime region.</summary>
    public const string RegionMissing = "region_missing";

    /// <summary>A computing pool names the same region twice.</summary>
    public const string RegionDuplicated = "region_duplicated";

    /// <summary>The computing pool does not exist (or is not open to the caller's tenant).</summary>
    public const string PoolNotFound = "pool_not_found";

    /// <summary>A computing unit names no computing pool.</summary>
    public const string PoolIdEmpty = "pool_id_empty";

    /// <summary>The computing pool has no config for the region named.</summary>
    public const string RegionConfigNotFound = "region_config_not_found";

    /// <summary>The scale template does not exist in the tenant.</summary>
    public const string ScaleTemplateNotFound = "scale_template_not_found";

    /// <summary>The computing unit's agent function was removed (redeploy the unit).</summary>
    public const string AgentFunctionNotFound = "agent_function_not_found";

    /// <summary>A computing unit's replicas are below 0.</summary>
    public const string ReplicasInvalid = "replicas_invalid";

    /// <summary>The region, instance type and sub-project have no capacity left for the replicas asked for.</summary>
    public const string CapacityExhausted = "capacity_exhausted";

    /// <summary>An agent version names no image.</summary>
    public const string ImageBlank = "image_blank";

    /// <summary>An agent version has no version name.</summary>
    public const string VersionNameBlank = "version_name_blank";

    /// <summary>An agent version names no scale template.</summary>
    public const string ScaleTemplateBlank = "scale_template_blank";

    /// <summary>Usage: no such indicator.</summary>
    public const string IndicatorUnknown = "indicator_unknown";

    /// <summary>Usage: the step is not minute, hour or day.</summary>
    public const string StepUnknown = "step_unknown";

    /// <summary>Usage: the indicator cannot be split by that dimension (<c>by</c>).</summary>
    public const string DimensionUnknown = "dimension_unknown";

    /// <summary>Usage: <c>from</c> is not before <c>to</c>.</summary>
    public const string RangeReversed = "range_reversed";

    /// <summary>Usage: the range has more points than a series may (a week of minutes); take a longer step.</summary>
    public const string TooManyPoints = "too_many_points";

    /// <summary>Usage: the range starts before the rollups' retention.</summary>
    public const string PastRetention = "past_retention";

    /// <summary>Usage: the rollups are not built yet for the range (it starts at or after the roller's watermark).</summary>
    public const string RollupNotBuilt = "rollup_not_built";

    /// <summary>Usage: the chart type is not line, bar, stacked or table.</summary>
    public const string ChartType = "chart_type";

    /// <summary>Usage: no built-in chart has that id.</summary>
    public const string ChartNotFound = "chart_not_found";

    /// <summary>Readiness: the object store does not answer.</summary>
    public const string StorageUnreachable = "storage_unreachable";

    /// <summary>Metrics: <c>/metrics</c> needs the platform admin key or the scrape token.</summary>
    public const string MetricsCredential = "metrics_credential";
}
