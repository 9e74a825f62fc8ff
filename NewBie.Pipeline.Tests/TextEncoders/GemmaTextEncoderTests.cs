using NewBie.Pipeline.Configs;
using NewBie.Pipeline.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace NewBie.Pipeline.Tests.TextEncoders;

public sealed class GemmaTextEncoderTests
{
    private static (Tensor Ids, Tensor Mask) Batch()
    {
        var ids = torch.tensor(new long[,] { { 2, 17, 300, 45, 9, 511, 80, 3, 4, 5 }, { 2, 11, 12, 0, 0, 0, 0, 0, 0, 0 } });
        return (ids, ids.ne(0).to(int64));
    }

    [Fact]
    public void Module_holds_only_the_layers_before_the_last_and_no_final_norm()
    {
        using var model = new GemmaTextEncoder(GemmaConfig.Tiny, CPU, float32);
        var keys = WeightLoader.ModuleTensors(model).Keys.ToList();
        Assert.Contains("embed_tokens.weight", keys);
        Assert.Contains("layers.1.self_attn.q_proj.weight", keys);
        Assert.Contains("layers.1.post_feedforward_layernorm.weight", keys);
        Assert.DoesNotContain(keys, k => k.StartsWith("layers.2.", StringComparison.Ordinal));
        Assert.DoesNotContain("norm.weight", keys);
        // 2 layers × (4 projections + 2 q/k norms + 3 MLP + 4 sandwich norms) + embedding.
        Assert.Equal(2 * 13 + 1, keys.Count);
    }

    [Fact]
    public void Module_is_built_in_the_requested_dtype()
    {
        using var model = new GemmaTextEncoder(GemmaConfig.Tiny, CPU, bfloat16);
        Assert.All(WeightLoader.ModuleTensors(model).Values, t => Assert.Equal(bfloat16, t.dtype));
    }

    [Fact]
    public void Random_tiny_model_is_deterministic_for_a_seed()
    {
        var (ids, mask) = Batch();
        using var a = GemmaTextEncoder.CreateRandom(GemmaConfig.Tiny, 7, CPU, float32);
        using var b = GemmaTextEncoder.CreateRandom(GemmaConfig.Tiny, 7, CPU, float32);
        using var other = GemmaTextEncoder.CreateRandom(GemmaConfig.Tiny, 8, CPU, float32);
        using var ya = a.forward(ids, mask);
        using var yb = b.forward(ids, mask);
        using var yo = other.forward(ids, mask);
        Assert.Equal(new long[] { 2, 10, 64 }, ya.shape);
        Assert.True(ya.equal(yb).all().item<bool>());
        Assert.False(ya.allclose(yo));
        Assert.True(ya.isfinite().all().item<bool>());
    }

    [Fact]
    public void Random_tiny_model_in_bfloat16_tracks_float32()
    {
        var (ids, mask) = Batch();
        using var f32 = GemmaTextEncoder.CreateRandom(GemmaConfig.Tiny, 7, CPU, float32);
        using var bf16 = GemmaTextEncoder.CreateRandom(GemmaConfig.Tiny, 7, CPU, bfloat16);
        using var y32 = f32.forward(ids, mask);
        using var y16 = bf16.forward(ids, mask);
        Assert.Equal(bfloat16, y16.dtype);
        Assert.True(TensorFiles.MinCosine(y16, y32, mask) > 0.99);
    }

    [Fact]
    public void Encoder_follows_its_weights_when_moved_with_to()
    {
        var (ids, mask) = Batch();
        using var built = GemmaTextEncoder.CreateRandom(GemmaConfig.Tiny, 7, CPU, bfloat16);
        using var moved = GemmaTextEncoder.CreateRandom(GemmaConfig.Tiny, 7, CPU, float32);
        moved.to(bfloat16);
        Assert.Equal(bfloat16, moved.DType);
        using var expected = built.forward(ids, mask);
        using var actual = moved.forward(ids, mask);
        Assert.Equal(bfloat16, actual.dtype);
        Assert.True(actual.equal(expected).all().item<bool>());
    }

    [Fact]
    public void Embedding_scale_is_rounded_to_the_weight_dtype()
    {
        // Hugging Face multiplies by sqrt(hidden) cast to the weight dtype: sqrt(2560) = 50.596 becomes 50.5 in bf16,
        // so an embedding value of 5 gives bf16(252.5) = 252, where the unrounded scale would give bf16(252.98) = 253.
        var config = GemmaConfig.Tiny with { HiddenSize = 2560, IntermediateSize = 16, NumHiddenLayers = 2, VocabSize = 4 };
        using var model = new GemmaTextEncoder(config, CPU, bfloat16);
        using (torch.no_grad())
            WeightLoader.ModuleTensors(model)["embed_tokens.weight"].fill_(5);
        var ids = torch.tensor(new long[,] { { 1 } });
        var states = model.HiddenStates(ids, torch.ones(1, 1, dtype: int64));
        Assert.Equal(252f, states[0][0, 0, 0].to(float32).item<float>());
    }

    [Fact]
    public void Released_preset_builds_33_layers_with_the_released_shapes_without_allocating()
    {
        using var model = new GemmaTextEncoder(GemmaConfig.Gemma3_4B, META, bfloat16);
        var shapes = WeightLoader.ModuleTensors(model).ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        Assert.Equal(new long[] { 262_208, 2560 }, shapes["embed_tokens.weight"]);
        Assert.Equal(new long[] { 2048, 2560 }, shapes["layers.32.self_attn.q_proj.weight"]);
        Assert.Equal(new long[] { 1024, 2560 }, shapes["layers.32.self_attn.k_proj.weight"]);
        Assert.Equal(new long[] { 2560, 2048 }, shapes["layers.32.self_attn.o_proj.weight"]);
        Assert.Equal(new long[] { 256 }, shapes["layers.32.self_attn.q_norm.weight"]);
        Assert.Equal(new long[] { 2560, 10_240 }, shapes["layers.32.mlp.down_proj.weight"]);
        Assert.False(shapes.ContainsKey("layers.33.input_layernorm.weight"));
    }
}
