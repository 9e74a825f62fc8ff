using NewBie.Pipeline.Configs;
using NewBie.Pipeline.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace NewBie.Pipeline.Tests.TextEncoders;

public sealed class JinaTextEncoderTests
{
    private static (Tensor Ids, Tensor Mask) Batch()
    {
        // <s> … </s>, right-padded with <pad> = 1; the mask is ids != pad, as HFTextEncoder builds it.
        var ids = torch.tensor(new long[,] { { 0, 17, 300, 45, 9, 511, 2 }, { 0, 11, 2, 1, 1, 1, 1 } });
        return (ids, ids.ne(1).to(int64));
    }

    [Fact]
    public void Module_keys_are_the_checkpoint_names_of_the_text_tower()
    {
        using var model = new JinaTextEncoder(JinaConfig.Tiny, CPU, float32);
        var keys = WeightLoader.ModuleTensors(model).Keys.ToHashSet();
        Assert.Contains("embeddings.word_embeddings.weight", keys);
        Assert.Contains("embeddings.token_type_embeddings.weight", keys);
        Assert.Contains("emb_ln.bias", keys);
        Assert.Contains("encoder.layers.1.mixer.Wqkv.weight", keys);
        Assert.Contains("encoder.layers.1.mixer.out_proj.bias", keys);
        Assert.Contains("encoder.layers.1.mlp.fc2.weight", keys);
        Assert.Contains("encoder.layers.1.norm2.weight", keys);
        // 2 embeddings + emb_ln (2) + 2 layers × (Wqkv, out_proj, fc1, fc2, norm1, norm2: 2 each).
        Assert.Equal(2 + 2 + 2 * 12, keys.Count);
    }

    [Fact]
    public void Random_tiny_model_is_deterministic_for_a_seed()
    {
        var (ids, mask) = Batch();
        using var a = JinaTextEncoder.CreateRandom(JinaConfig.Tiny, 3, CPU, float32);
        using var b = JinaTextEncoder.CreateRandom(JinaConfig.Tiny, 3, CPU, float32);
        using var other = JinaTextEncoder.CreateRandom(JinaConfig.Tiny, 4, CPU, float32);
        using var ya = a.forward(ids, mask);
        using var yb = b.forward(ids, mask);
        using var yo = other.forward(ids, mask);
        Assert.Equal(new long[] { 2, 64 }, ya.shape);
        Assert.True(ya.equal(yb).all().item<bool>());
        Assert.False(ya.allclose(yo));
    }

    [Fact]
    public void Encoder_follows_its_weights_when_moved_with_to()
    {
        var (ids, mask) = Batch();
        using var built = JinaTextEncoder.CreateRandom(JinaConfig.Tiny, 3, CPU, bfloat16);
        using var moved = JinaTextEncoder.CreateRandom(JinaConfig.Tiny, 3, CPU, float32);
        moved.to(bfloat16);
        Assert.Equal(bfloat16, moved.DType);
        using var expected = built.forward(ids, mask);
        using var actual = moved.forward(ids, mask);
        Assert.Equal(bfloat16, actual.dtype);
        Assert.True(actual.equal(expected).all().item<bool>());
    }

    [Fact]
    public void Pooled_output_is_the_mean_of_real_tokens_and_not_normalised()
    {
        var (ids, mask) = Batch();
        using var model = JinaTextEncoder.CreateRandom(JinaConfig.Tiny, 3, CPU, float32);
        var (tokens, pooled) = model.Encode(ids, mask);
        using var expected = tokens[1, TensorIndex.Slice(0, 3)].mean([0]);
        Assert.True(TensorFiles.MaxAbsDiff(pooled[1], expected) < 1e-6);
        Assert.True(Math.Abs(pooled[0].norm().item<float>() - 1) > 1e-3);
    }

    [Fact]
    public void Released_preset_builds_24_layers_with_the_released_shapes_without_allocating()
    {
        using var model = new JinaTextEncoder(JinaConfig.JinaClipV2, META, bfloat16);
        var shapes = WeightLoader.ModuleTensors(model).ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        Assert.Equal(new long[] { 250_002, 1024 }, shapes["embeddings.word_embeddings.weight"]);
        Assert.Equal(new long[] { 1, 1024 }, shapes["embeddings.token_type_embeddings.weight"]);
        Assert.Equal(new long[] { 3072, 1024 }, shapes["encoder.layers.23.mixer.Wqkv.weight"]);
        Assert.Equal(new long[] { 4096, 1024 }, shapes["encoder.layers.23.mlp.fc1.weight"]);
        Assert.False(shapes.ContainsKey("encoder.layers.24.norm1.weight"));
    }
}
