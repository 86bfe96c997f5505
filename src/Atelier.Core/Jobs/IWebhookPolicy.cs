namespace Atelier.Core.Jobs;

/// <summary>
/// What a job's state changes need to know about webhooks, provided by the webhooks feature: how many tries a
/// message gets (written into the outbox with the change) and whether a URL is one the platform may call. Jobs own
/// their outbox; the relay reads it. This keeps the arrow one way: webhooks depend on jobs, not the other way.
/// </summary>
public interface IWebhookPolicy
{
    /// <summary>The attempts one message gets (the length of the retry schedule).</summary>
    int MaxTries { get; }

    /// <summary>The URL when it is an absolute http(s) URL the platform may call, else invalid input naming <paramref name="field"/>.</summary>
    string CheckUrl(string url, string field);
}
