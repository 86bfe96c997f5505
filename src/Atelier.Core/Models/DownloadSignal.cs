using Atelier.Core.Common;

namespace Atelier.Core.Models;

/// <summary>Wakes the download worker when a file is queued.</summary>
public sealed class DownloadSignal : WakeSignal;
