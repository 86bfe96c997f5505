using Atelier.Core.Common;

namespace Atelier.Core.Agents;

/// <summary>Wakes the autoscaler when a unit is created, changed or redeployed (on this replica; others see it at their next pass).</summary>
public sealed class AutoscaleSignal : WakeSignal;
