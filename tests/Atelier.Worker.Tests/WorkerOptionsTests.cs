using Atelier.Worker.Runner;

namespace Atelier.Worker.Tests;

/// <summary>How a worker's options set up the built-in engine.</summary>
public sealed class WorkerOptionsTests
{
    private static WorkerOptions Options(int slots, string device = "cpu") =>
        new() { Server = new Uri("http://127.0.0.1:1"), Token = "atw_x", Slots = slots, Device = device };

    /// <summary>
    /// Slots on the CPU share the cores: each session gets its share of intra-op threads, at least one, instead of ONNX
    /// Runtime's thread per core for every session. One slot keeps the default (all cores). CUDA sessions get the same
    /// share (their CPU ops share the cores, and a CUDA device that falls back runs on the CPU).
    /// </summary>
    [Theory]
    [InlineData(1, 2, 0)]
    [InlineData(2, 2, 1)]
    [InlineData(8, 2, 1)]
    [InlineData(4, 16, 4)]
    [InlineData(3, 16, 5)]
    public void CpuSlots_ShareTheCores(int slots, int cores, int threads) =>
        Assert.Equal(threads, WorkerOptions.CpuThreadsPerSlot(slots, cores));

    [Fact]
    public void DeviceSettings_GiveEachSlotItsShare_AndLeaveOneSlotAlone()
    {
        Assert.Equal(WorkerOptions.CpuThreadsPerSlot(8, Environment.ProcessorCount), Options(8).DeviceSettings().Threads);
        Assert.True(Options(8).DeviceSettings().Threads >= 1);
        Assert.Equal(0, Options(1).DeviceSettings().Threads);
        Assert.Equal(Options(8).DeviceSettings().Threads, Options(8, "cuda:0").DeviceSettings().Threads);
    }
}
