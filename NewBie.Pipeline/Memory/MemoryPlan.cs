namespace NewBie.Pipeline.Memory;

/// <summary>
/// Where the networks live (design.md §5). The DiT and the VAE are always on the generation device; the plans differ
/// only in the text encoders, the largest part that runs just once per prompt.
/// </summary>
public enum MemoryPlan
{
    /// <summary>Text encoders, DiT and VAE all on the device.</summary>
    AllResident,
    /// <summary>Text encoders kept in host memory and moved to the device one at a time only to encode a job's prompts, then back.</summary>
    EncodersOnDemand,
    /// <summary>Text encoders run on the CPU; only their outputs go to the device.</summary>
    EncodersOnCpu,
}

public static class MemoryPlans
{
    public const string Auto = "auto";

    /// <summary>Most resident first: the order in which automatic selection tries them.</summary>
    public static IReadOnlyList<MemoryPlan> ByPreference { get; } = [MemoryPlan.AllResident, MemoryPlan.EncodersOnDemand, MemoryPlan.EncodersOnCpu];

    /// <summary>The stable name used in settings, /readyz and metrics.</summary>
    public static string Name(this MemoryPlan plan) => plan switch
    {
        MemoryPlan.AllResident => "all-resident",
        MemoryPlan.EncodersOnDemand => "encoders-on-demand",
        MemoryPlan.EncodersOnCpu => "encoders-on-cpu",
        _ => throw new ArgumentOutOfRangeException(nameof(plan)),
    };

    /// <summary>A plan by its name; null for "auto" or anything unknown.</summary>
    public static MemoryPlan? Parse(string? name) => ByPreference.Cast<MemoryPlan?>().FirstOrDefault(p => p!.Value.Name() == name);
}
