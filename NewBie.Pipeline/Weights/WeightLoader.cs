using TorchSharp;
using static TorchSharp.torch;

namespace NewBie.Pipeline.Weights;

/// <summary>
/// Strict loading of a checkpoint into a module whose parameter names are the checkpoint names.
/// A missing, unexpected or misshaped tensor is an error that names every such tensor; nothing is copied
/// unless the whole set matches. Tensors are copied from the mapped file straight into the module's
/// parameters (which already live on their final device and dtype), so no full copy is made in host memory.
/// </summary>
public static class WeightLoader
{
    /// <summary>
    /// Maps a checkpoint key to a module key. Return null to ignore the tensor (e.g. a vision tower or an LM head
    /// that inference never uses). The identity map accepts exactly the module's keys.
    /// </summary>
    public delegate string? KeyMap(string checkpointKey);

    public static readonly KeyMap Identity = k => k;

    /// <summary>Checks names and shapes and returns the checkpoint key for every module key. Throws <see cref="WeightLoadException"/>.</summary>
    public static IReadOnlyDictionary<string, string> Plan(nn.Module module, Checkpoint checkpoint, KeyMap? map = null, string? what = null)
    {
        map ??= Identity;
        var targets = ModuleTensors(module);
        var plan = new Dictionary<string, string>(StringComparer.Ordinal);
        var unexpected = new List<string>();
        var misshaped = new List<string>();
        var duplicated = new List<string>();
        foreach (var ckKey in checkpoint.Keys.OrderBy(k => k, StringComparer.Ordinal))
        {
            var key = map(ckKey);
            if (key is null) continue;
            if (!targets.TryGetValue(key, out var target)) { unexpected.Add(ckKey); continue; }
            if (!plan.TryAdd(key, ckKey)) { duplicated.Add($"{ckKey} (also {plan[key]})"); continue; }
            var info = checkpoint.Info(ckKey);
            if (!info.Shape.SequenceEqual(target.shape))
                misshaped.Add($"{ckKey}: checkpoint {info.ShapeText}, expected [{string.Join(", ", target.shape)}]");
        }
        var missing = targets.Keys.Where(k => !plan.ContainsKey(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
        if (missing.Count + unexpected.Count + misshaped.Count + duplicated.Count > 0)
        {
            var lines = new List<string> { $"{what ?? module.GetName()}: checkpoint {checkpoint.Source} does not match the architecture" };
            void Add(string title, List<string> items)
            {
                if (items.Count == 0) return;
                lines.Add($"{title} ({items.Count}): " + string.Join(", ", items.Take(20)) + (items.Count > 20 ? $", … {items.Count - 20} more" : ""));
            }
            Add("missing", missing);
            Add("unexpected", unexpected);
            Add("misshaped", misshaped);
            Add("duplicated", duplicated);
            throw new WeightLoadException(string.Join(Environment.NewLine, lines));
        }
        return plan;
    }

    /// <summary>Checks and then copies every tensor into the module (converted to each parameter's dtype and device).</summary>
    public static void Load(nn.Module module, Checkpoint checkpoint, KeyMap? map = null, string? what = null)
    {
        var plan = Plan(module, checkpoint, map, what);
        var targets = ModuleTensors(module);
        using var _ = torch.no_grad();
        foreach (var (key, ckKey) in plan)
        {
            using var scope = torch.NewDisposeScope();
            var view = checkpoint.View(ckKey);
            targets[key].copy_(view);
        }
    }

    /// <summary>Parameters and persistent buffers by their state_dict name (the live tensors, not copies).</summary>
    public static Dictionary<string, Tensor> ModuleTensors(nn.Module module) =>
        new(module.state_dict(), StringComparer.Ordinal);
}
