using Microsoft.Extensions.Options;
using NewBie.Host.Telemetry;
using NewBie.Pipeline;
using NewBie.Pipeline.Memory;
using TorchSharp;

namespace NewBie.Host.Models;

/// <summary>What the planner decided for the engine's device: facts for /readyz, metrics and the admin System page.</summary>
public sealed record MemoryDecision(
    string Device,
    string Description,
    MemoryPlan Plan,
    string Reason,
    long? TotalBytes,
    long? FreeBytes,
    IReadOnlyDictionary<MemoryPlan, long> ThresholdBytes);

/// <summary>
/// Device detection and the memory plan (design.md §5): CUDA when TorchSharp can use it (named and sized by the driver
/// through <see cref="IGpuMemory"/>), the CPU otherwise; the plan from <c>Models:MemoryPlan</c>, or on auto the most
/// resident plan whose estimate fits the free VRAM at start. Decided once, when the engine loads.
/// </summary>
public sealed class MemoryPlanner(IGpuMemory gpu, IOptions<ModelsOptions> options, ILogger<MemoryPlanner> logger)
{
    private const double GiB = 1L << 30;

    /// <summary>Null until the engine factory has asked for a plan (a test's own engine never does).</summary>
    public MemoryDecision? Decision { get; private set; }

    /// <summary>Decides for a model about to load on <paramref name="device"/>, logs it, and remembers it for reporting.</summary>
    public MemoryPlan Decide(PipelineConfig config, torch.Device device, torch.ScalarType dtype)
    {
        var name = device.type == DeviceType.CUDA ? $"cuda:{Math.Max(0, device.index)}" : device.ToString().ToLowerInvariant();
        var gpuInfo = IGpuMemory.IndexOf(name) is { } index ? gpu.Devices().FirstOrDefault(d => d.Index == index) : null;
        var memory = gpu.Query(name);
        var estimate = MemoryEstimate.For(config, dtype);
        var (plan, reason) = Choose(options.Value.MemoryPlan, name, memory?.FreeBytes, estimate);
        Decision = new MemoryDecision(name, gpuInfo is null ? name : $"{name} {gpuInfo.Name}", plan, reason,
            memory?.TotalBytes ?? gpuInfo?.TotalBytes, memory?.FreeBytes,
            MemoryPlans.ByPreference.ToDictionary(p => p, estimate.Threshold));
        logger.LogInformation("Device {Device}, memory plan {MemoryPlan}: {Reason}", Decision.Description, plan.Name(), reason);
        return plan;
    }

    /// <summary>
    /// The plan for a setting, a device and its free memory. On the CPU every plan computes the same thing on the one
    /// device, so auto keeps everything resident there.
    /// </summary>
    public static (MemoryPlan Plan, string Reason) Choose(string setting, string device, long? freeBytes, MemoryEstimate estimate)
    {
        if (MemoryPlans.Parse(setting) is { } chosen) return (chosen, $"Models:MemoryPlan = {setting}");
        if (setting != MemoryPlans.Auto) throw new ArgumentException($"Models:MemoryPlan must be auto, all-resident, encoders-on-demand or encoders-on-cpu, got '{setting}'.");
        if (!device.StartsWith("cuda", StringComparison.Ordinal)) return (MemoryPlan.AllResident, "on the CPU every network shares host memory");
        if (freeBytes is not { } free) return (MemoryPlan.AllResident, "the driver does not report free VRAM; assuming it fits");
        var plan = estimate.Choose(free);
        var need = estimate.Threshold(plan);
        return (plan, need <= free
            ? $"{free / GiB:F1} GiB free covers its estimated {need / GiB:F1} GiB at {MemoryEstimate.ReferenceSide}²"
            : $"{free / GiB:F1} GiB free is less than any plan's estimate at {MemoryEstimate.ReferenceSide}² (this one needs {need / GiB:F1} GiB): jobs wait for memory or fail out_of_memory");
    }
}
