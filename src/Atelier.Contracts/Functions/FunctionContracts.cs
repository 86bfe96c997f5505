using System.Text.Json;

namespace Atelier.Contracts.Functions;

/// <summary>A region: where functions run and which runtime backend serves it (<c>local</c> or <c>kubernetes</c> with a kube config).</summary>
public sealed record RegionRequest(string? Name, string? Backend, string? KubeConfigId, string? Namespace);

public sealed record RegionDto(string Name, string Backend, string? KubeConfigId, string Namespace, DateTime CreatedAt, DateTime UpdatedAt);

/// <summary>A kube config (YAML); stored sealed, never returned.</summary>
public sealed record KubeConfigRequest(string? Name, string? KubeConfig);

public sealed record KubeConfigDto(string Id, string Name, string? Cluster, DateTime CreatedAt);

/// <summary>
/// A function template. <c>Args</c> and <c>Environment</c> values may name <c>{{parameter}}</c> (an instance parameter)
/// and <c>{port}</c> (the instance's port on the local backend).
/// </summary>
public sealed record FunctionTemplateRequest(
    string? Name, string? Description, string? Engine, string? Image, string? Command, IReadOnlyList<string>? Args,
    IReadOnlyDictionary<string, string>? Environment, int? Port, string? HealthPath, double? Cpu, int? MemoryMb, int? Gpu,
    int? InstanceConcurrency, int? TimeoutSeconds, JsonElement? ParametersSchema);

public sealed record FunctionTemplateDto(
    string Id, string Name, string? Description, string Engine, string? Image, string? Command, IReadOnlyList<string> Args,
    IReadOnlyDictionary<string, string> Environment, int Port, string HealthPath, double Cpu, int MemoryMb, int Gpu,
    int InstanceConcurrency, int TimeoutSeconds, JsonElement ParametersSchema, bool BuiltIn, DateTime CreatedAt, DateTime UpdatedAt);

public sealed record ServiceRequest(string? Name, string? Description);

public sealed record ServiceDto(string Id, string Name, string? Description, DateTime CreatedAt);

/// <summary>Creates a function from a template with instance parameters checked against the template's schema.</summary>
public sealed record CreateFunctionByTemplateRequest(string? Name, string? Description, string? TemplateId, JsonElement? InstanceParameters, string? Region);

/// <summary>Updates a function made by template; <c>InstanceParameters</c> must be given (an empty object keeps the defaults).</summary>
public sealed record UpdateFunctionByTemplateRequest(string? TemplateId, JsonElement? InstanceParameters, string? Description);

/// <summary>
/// The open-function API: the runnable spec given directly. Unset fields take the tenant's function settings
/// (<c>timeoutSeconds</c>, <c>instanceConcurrency</c>, <c>memoryMb</c>, <c>environment</c>, …), then the platform's defaults.
/// </summary>
public sealed record OpenFunctionRequest(
    string? Name, string? Description, string? Region, string? Engine, string? Image, string? Command, IReadOnlyList<string>? Args,
    IReadOnlyDictionary<string, string>? Environment, int? Port, string? HealthPath, double? Cpu, int? MemoryMb, int? Gpu,
    int? InstanceConcurrency, int? TimeoutSeconds, int? IdleSeconds);

/// <summary>A function's runnable configuration (the draft, <c>LATEST</c>, or a published version's snapshot).</summary>
public sealed record FunctionConfig(
    string Engine, string? Image, string? Command, IReadOnlyList<string> Args, IReadOnlyDictionary<string, string> Environment,
    int Port, string HealthPath, double Cpu, int MemoryMb, int Gpu, int InstanceConcurrency, int TimeoutSeconds, int IdleSeconds,
    string? OutputFormat);

public sealed record FunctionDto(
    string Id, string ServiceName, string Name, string? Description, string Region, string? TemplateId, JsonElement? InstanceParameters,
    FunctionConfig Config, string State, string? StateReason, int ManualInstances, int? ProvisionedInstances, int? ReservedConcurrency,
    string InvokeUrl, DateTime CreatedAt, DateTime UpdatedAt, FunctionRuntimeDto? Runtime = null);

/// <summary>What the backend reports for a function when it was asked (lists and gets).</summary>
public sealed record FunctionRuntimeDto(string Phase, string? Reason, int Instances, int ReadyInstances);

public sealed record ScaleRequest(int? Instances);

public sealed record PublishVersionRequest(string? Description);

public sealed record FunctionVersionDto(int VersionId, string? Description, FunctionConfig Config, DateTime CreatedAt);

/// <summary>An alias: a version and, optionally, a second version with the weight (0..1) of the traffic it gets, as <c>{"3": 0.1}</c>.</summary>
public sealed record AliasRequest(string? Name, int? VersionId, IReadOnlyDictionary<string, double>? AdditionalVersionWeight, string? Description);

public sealed record AliasDto(string Name, int VersionId, IReadOnlyDictionary<string, double> AdditionalVersionWeight, string? Description, DateTime CreatedAt, DateTime UpdatedAt);

/// <summary>A trigger: <c>http</c> (<c>anonymous</c> or not, allowed <c>methods</c>) or <c>timer</c> (<c>cron</c>, 5 or 6 fields, and a <c>payload</c> posted to the function).</summary>
public sealed record TriggerRequest(string? Name, string? Type, string? Qualifier, bool? Anonymous, IReadOnlyList<string>? Methods, string? Cron, string? Payload, bool? Enabled);

public sealed record TriggerDto(string Name, string Type, string? Qualifier, bool Anonymous, IReadOnlyList<string> Methods, string? Cron, string? Payload,
    bool Enabled, DateTime? NextRunAt, DateTime? LastRunAt, DateTime CreatedAt);

/// <summary>A destination for async results: a webhook URL (<c>https://…</c>) or another function (<c>function:{service}/{function}</c>).</summary>
public sealed record AsyncDestination(string? Destination);

public sealed record AsyncDestinationConfig(AsyncDestination? OnSuccess, AsyncDestination? OnFailure);

public sealed record AsyncInvokeConfigRequest(int? MaxAsyncRetryAttempts, int? MaxAsyncEventAgeInSeconds, AsyncDestinationConfig? DestinationConfig);

public sealed record AsyncInvokeConfigDto(int MaxAsyncRetryAttempts, int MaxAsyncEventAgeInSeconds, AsyncDestinationConfig DestinationConfig);

public sealed record AsyncInvocationDto(string Id, string FunctionName, string? Qualifier, string Method, string Path, string State, int Attempts,
    int? StatusCode, string? Error, DateTime CreatedAt, DateTime? FinishedAt, string? ResultContentType, string? Result);

public sealed record ProvisionConfigRequest(int? Target);

/// <summary>A provision config: the instances kept warm (<c>Target</c>) and how many there are now (<c>Current</c>).</summary>
public sealed record ProvisionConfigDto(int Target, int Current, string? CurrentError);

public sealed record ConcurrencyConfigRequest(int? ReservedConcurrency);

public sealed record ConcurrencyConfigDto(int ReservedConcurrency);

/// <summary>Mounts a host name on a function; <c>Certificate</c> (PEM chain) and <c>PrivateKey</c> (PEM) must be a pair.</summary>
public sealed record MountDomainRequest(string? DomainName, string? Qualifier, string? Certificate, string? PrivateKey);

public sealed record CustomDomainDto(string DomainName, string FunctionName, string? Qualifier, DateTime CertificateNotAfter, DateTime CreatedAt);
