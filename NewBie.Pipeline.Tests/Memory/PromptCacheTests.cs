using NewBie.Pipeline.Imaging;
using NewBie.Pipeline.Memory;
using NewBie.Pipeline.Sampling;
using NewBie.Pipeline.Tests.EndToEnd;
using TorchSharp;
using static TorchSharp.torch;

namespace NewBie.Pipeline.Tests.Memory;

public sealed class PromptCacheTests(TinyModelFixture tiny) : IClassFixture<TinyModelFixture>
{
    private static GenerationRequest Request(string prompt = "<character_1><n>tiny</n></character_1>", string negative = "blurry") => new()
    {
        Prompt = prompt,
        NegativePrompt = negative,
        Width = 32,
        Height = 32,
        Steps = 2,
        Seed = 5,
    };

    private NewBiePipeline Load(long cacheBytes = PipelineOptions.DefaultPromptCacheBytes) =>
        NewBiePipeline.Load(tiny.Folder, PipelineConfig.Tiny, torch.CPU, ScalarType.Float32, new PipelineOptions { PromptCacheBytes = cacheBytes });

    private static byte[] Png(NewBiePipeline pipeline, GenerationRequest request)
    {
        var image = Assert.Single(pipeline.Generate(request, null, CancellationToken.None).Images);
        return PngWriter.Encode(image, GenerationMetadata.For(request, image, pipeline.Model.Id));
    }

    private static Conditioning Conditioning(int tokens) =>
        new(torch.ones(1, tokens, 4), torch.ones(1, tokens, dtype: int64), torch.ones(1, 4));

    [Fact]
    public void Repeated_prompt_skips_the_encoders_and_gives_identical_png_bytes()
    {
        using var cached = Load();
        using var uncached = Load(cacheBytes: 0);
        var first = Png(cached, Request());
        Assert.Equal(2, cached.EncoderRuns);
        var second = Png(cached, Request());
        Assert.Equal(2, cached.EncoderRuns);
        Assert.Equal((2L, 2L), (cached.PromptCacheHits, cached.PromptCacheMisses));
        Assert.Equal(first, second);
        Assert.Equal(first, Png(uncached, Request()));
        Assert.Equal(first, Png(uncached, Request()));
        Assert.Equal(4, uncached.EncoderRuns);
    }

    [Fact]
    public void Empty_negative_prompt_is_encoded_once_and_different_prompts_miss()
    {
        using var pipeline = Load();
        var lookups = new List<bool>();
        pipeline.PromptCacheLookup += lookups.Add;
        pipeline.Generate(Request("a cat", negative: ""), null, CancellationToken.None);
        pipeline.Generate(Request("a dog", negative: ""), null, CancellationToken.None);
        Assert.Equal(new[] { false, false, false, true }, lookups);
        Assert.Equal(3, pipeline.EncoderRuns);
        Assert.Equal(3, pipeline.PromptEmbeddings.Count);
    }

    [Fact]
    public void A_cache_too_small_for_both_prompts_evicts_within_a_run_and_still_gives_the_same_image()
    {
        using var reference = Load(cacheBytes: 0);
        var expected = Png(reference, Request());
        using var probe = Load();
        probe.Generate(Request(), null, CancellationToken.None);

        using var small = Load(cacheBytes: probe.PromptEmbeddings.Bytes - 1);
        Assert.Equal(expected, Png(small, Request()));
        Assert.True(small.PromptEmbeddings.Bytes <= small.PromptEmbeddings.CapacityBytes);
        Assert.Equal(1, small.PromptEmbeddings.Count);
        Assert.Equal(expected, Png(small, Request()));
    }

    [Fact]
    public void Eviction_by_bytes_drops_the_least_recently_used_entry()
    {
        var size = PromptCache.SizeOf(Conditioning(3));
        using var cache = new PromptCache(2 * size);
        var evicted = new List<Conditioning>();
        var a = Conditioning(3);
        Assert.True(cache.Add("a", a, evicted));
        Assert.True(cache.Add("b", Conditioning(3), evicted));
        Assert.True(cache.TryGet("a", out _));
        Assert.True(cache.Add("c", Conditioning(3), evicted));

        Assert.DoesNotContain(evicted, e => ReferenceEquals(e, a));
        Assert.Single(evicted);
        Assert.False(cache.TryGet("b", out _));
        Assert.True(cache.TryGet("a", out var stillA) && ReferenceEquals(a, stillA));
        Assert.Equal(2 * size, cache.Bytes);
        Assert.False(evicted[0].CapFeats.IsInvalid);
        PromptCache.Dispose(evicted[0]);
    }

    [Fact]
    public void An_entry_larger_than_the_cache_is_not_kept_and_dispose_frees_the_entries()
    {
        var big = Conditioning(10);
        var kept = Conditioning(1);
        var cache = new PromptCache(PromptCache.SizeOf(big) - 1);
        var evicted = new List<Conditioning>();
        Assert.False(cache.Add("big", big, evicted));
        Assert.True(cache.Add("small", kept, evicted));
        Assert.Empty(evicted);
        cache.Dispose();
        Assert.True(kept.CapFeats.IsInvalid);
        Assert.False(big.CapFeats.IsInvalid);
        PromptCache.Dispose(big);
    }

    [Fact]
    public void Cached_tensors_survive_the_dispose_scope_they_were_made_in()
    {
        using var cache = new PromptCache(1 << 20);
        Conditioning made;
        using (torch.NewDisposeScope())
        {
            made = Conditioning(2);
            cache.Add("k", made, []);
        }
        Assert.False(made.CapFeats.IsInvalid);
        Assert.False(made.Pooled.IsInvalid);
    }
}
