namespace Atelier.Core.Security;

/// <summary>The guard refused the address a download would connect to: permanent, never retried.</summary>
public sealed class DownloadRefusedException(string reason) : IOException(reason);
