using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Coordination;

/// <summary>Configuration section <c>Atelier:Coordination</c>: named locks and leader election between server replicas.</summary>
public sealed partial class CoordinationOptions
{
    public const string SectionName = "Atelier:Coordination";

    /// <summary>How long an API operation waits for a lock it needs before it answers <c>s_common_lockfail</c> (0: one try).</summary>
    [Range(0, 300)]
    public int LockWaitSeconds { get; set; } = 10;

    /// <summary>The <c>Retry-After</c> of that answer.</summary>
    [Range(1, 3600)]
    public int LockRetryAfterSeconds { get; set; } = 2;

    /// <summary>How often every replica tries to become the leader, and the leader checks that its lock is still held.</summary>
    [Range(1, 60)]
    public int LeaderCheckSeconds { get; set; } = 2;

    [OptionsValidator]
    internal sealed partial class Validator : IValidateOptions<CoordinationOptions>;
}
