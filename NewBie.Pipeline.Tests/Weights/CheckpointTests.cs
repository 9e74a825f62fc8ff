using NewBie.Pipeline.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace NewBie.Pipeline.Tests.Weights;

public sealed class CheckpointTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("newbie-ckpt-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private sealed class Tiny : nn.Module
    {
        public readonly nn.Module<Tensor, Tensor> proj;
        public readonly TorchSharp.Modules.Parameter scale;
        public Tiny() : base(nameof(Tiny))
        {
            proj = nn.Linear(3, 2);
            scale = nn.Parameter(torch.ones(4));
            RegisterComponents();
        }
    }

    private string Save(string name, Dictionary<string, Tensor> tensors)
    {
        var path = Path.Combine(_dir, name);
        SafetensorsWriter.Write(path, tensors);
        return path;
    }

    private static Dictionary<string, Tensor> Good() => new()
    {
        ["proj.weight"] = torch.arange(6, dtype: float32).reshape(2, 3),
        ["proj.bias"] = torch.tensor(new[] { 0.5f, -0.5f }),
        ["scale"] = torch.full(4, 2f),
    };

    [Fact]
    public void Load_copies_every_tensor_and_converts_dtype()
    {
        var t = Good();
        t["scale"] = t["scale"].to(bfloat16);
        using var ckpt = Checkpoint.Open(Save("w.safetensors", t));
        var m = new Tiny();
        WeightLoader.Load(m, ckpt);
        Assert.Equal(new[] { 0f, 1, 2, 3, 4, 5 }, m.proj.get_parameter("weight")!.data<float>().ToArray());
        Assert.Equal(new[] { 2f, 2, 2, 2 }, m.scale.data<float>().ToArray());
        Assert.Equal(float32, m.scale.dtype);
    }

    [Fact]
    public void Missing_tensor_is_named_in_the_error()
    {
        var t = Good();
        t.Remove("proj.bias");
        using var ckpt = Checkpoint.Open(Save("w.safetensors", t));
        var ex = Assert.Throws<WeightLoadException>(() => WeightLoader.Load(new Tiny(), ckpt));
        Assert.Contains("missing (1): proj.bias", ex.Message);
    }

    [Fact]
    public void Misshaped_and_unexpected_tensors_are_named_and_nothing_is_copied()
    {
        var t = Good();
        t["proj.weight"] = torch.zeros(3, 2);
        t["lm_head.weight"] = torch.zeros(1);
        using var ckpt = Checkpoint.Open(Save("w.safetensors", t));
        var m = new Tiny();
        var ex = Assert.Throws<WeightLoadException>(() => WeightLoader.Load(m, ckpt));
        Assert.Contains("proj.weight: checkpoint [3, 2], expected [2, 3]", ex.Message);
        Assert.Contains("unexpected (1): lm_head.weight", ex.Message);
        Assert.Equal(new[] { 1f, 1, 1, 1 }, m.scale.data<float>().ToArray());
    }

    [Fact]
    public void Key_map_can_ignore_and_rename_tensors()
    {
        var t = Good().ToDictionary(kv => "model." + kv.Key, kv => kv.Value);
        t["vision_tower.x"] = torch.zeros(1);
        using var ckpt = Checkpoint.Open(Save("w.safetensors", t));
        var m = new Tiny();
        WeightLoader.Load(m, ckpt, k => k.StartsWith("vision_tower.") ? null : k["model.".Length..]);
        Assert.Equal(new[] { 0.5f, -0.5f }, m.proj.get_parameter("bias")!.data<float>().ToArray());
    }

    [Fact]
    public void Sharded_index_is_read_as_one_checkpoint()
    {
        var t = Good();
        Save("model-00001-of-00002.safetensors", new() { ["proj.weight"] = t["proj.weight"] });
        Save("model-00002-of-00002.safetensors", new() { ["proj.bias"] = t["proj.bias"], ["scale"] = t["scale"] });
        File.WriteAllText(Path.Combine(_dir, "model.safetensors.index.json"), """
            {"metadata": {"total_size": 40}, "weight_map": {
              "proj.weight": "model-00001-of-00002.safetensors",
              "proj.bias": "model-00002-of-00002.safetensors",
              "scale": "model-00002-of-00002.safetensors"}}
            """);
        using var ckpt = Checkpoint.Open(_dir);
        var m = new Tiny();
        WeightLoader.Load(m, ckpt);
        Assert.Equal(new[] { 2f, 2, 2, 2 }, m.scale.data<float>().ToArray());
    }

    [Fact]
    public void Shard_names_with_directories_are_refused()
    {
        Save("a.safetensors", Good());
        File.WriteAllText(Path.Combine(_dir, "model.safetensors.index.json"),
            """{"weight_map": {"scale": "../a.safetensors"}}""");
        var ex = Assert.Throws<WeightLoadException>(() => Checkpoint.Open(_dir));
        Assert.Contains("not a plain file name", ex.Message);
    }
}
