namespace Atelier.Core.Jobs;

/// <summary>A job's own webhook as submitted (<paramref name="UrlField"/> and <paramref name="EventsField"/> name them in errors).</summary>
public sealed record WebhookRequest(string? Url, IReadOnlyList<string>? Events, string UrlField, string EventsField);
