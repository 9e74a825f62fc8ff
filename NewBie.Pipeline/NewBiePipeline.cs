using System.Diagnostics;
using NewBie.Pipeline.Configs;
using NewBie.Pipeline.Memory;
using NewBie.Pipeline.Sampling;
using NewBie.Pipeline.Tokenizers;
using NewBie.Pipeline.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace NewBie.Pipeline;

/// <summary>
/// The whole model: both tokenizers, Gemma-3 and Jina text encoders, NextDiT and the FLUX VAE decoder, loaded once
/// from a model folder and kept resident. <see cref="Generate"/> runs prompt → conditioning → denoising loop →
/// decode → RGB, one image of a count at a time, synchronously on the calling thread.
/// </summary>
public sealed class NewBiePipeline : IImageGenerator
{
    private readonly GemmaTokenizer _gemmaTokenizer;
    private readonly XlmRobertaTokenizer _jinaTokenizer;
    private readonly GemmaTextEncoder _gemma;
    private readonly JinaTextEncoder _jina;
    private readonly NextDiT _dit;
    private readonly FluxVaeDecoder _vae;
    // The networks hold no per-request state, but one generation at a time keeps peak memory predictable.
    private readonly Lock _gate = new();
    private readonly PromptCache _promptCache;
    private readonly FaultInjection? _faults;
    private long _promptCacheHits, _promptCacheMisses, _encoderRuns, _encoderMoves;

    /// <summary>Raised on every prompt-cache lookup (true = hit), on the generating thread.</summary>
    public event Action<bool>? PromptCacheLookup;

    public long PromptCacheHits => Interlocked.Read(ref _promptCacheHits);
    public long PromptCacheMisses => Interlocked.Read(ref _promptCacheMisses);
    /// <summary>How many prompts actually ran through the text encoders.</summary>
    internal long EncoderRuns => Interlocked.Read(ref _encoderRuns);
    internal PromptCache PromptEmbeddings => _promptCache;
    /// <summary>How many times an encoder was moved (to the device to encode, and back), under encoders on demand.</summary>
    internal long EncoderMoves => Interlocked.Read(ref _encoderMoves);

    /// <summary>Raised as each text encoder runs, with the network's name and the device its weights are on at that moment.</summary>
    internal event Action<string, Device>? EncoderRunning;

    public MemoryPlan MemoryPlan { get; }
    /// <summary>Where the text encoders' weights rest between encodes: the device when all resident, the CPU otherwise.</summary>
    public Device EncoderHome { get; }
    public long PromptCacheCapacityBytes => _promptCache.CapacityBytes;
    public MemoryEstimate MemoryEstimate { get; }

    public PipelineConfig Config { get; }
    /// <summary>What loading found and did per component (null for random-weight pipelines).</summary>
    public ModelPlan? Plan { get; private init; }
    public ModelInfo Model { get; }
    public Device Device { get; }
    public ScalarType DType { get; }

    private NewBiePipeline(PipelineConfig config, ModelInfo model, Device device, ScalarType dtype,
        GemmaTokenizer gemmaTokenizer, XlmRobertaTokenizer jinaTokenizer,
        GemmaTextEncoder gemma, JinaTextEncoder jina, NextDiT dit, FluxVaeDecoder vae, PipelineOptions options)
    {
        _promptCache = new PromptCache(options.PromptCacheBytes);
        _faults = options.FaultOom;
        MemoryPlan = options.MemoryPlan;
        EncoderHome = EncoderHomeFor(options.MemoryPlan, device);
        MemoryEstimate = MemoryEstimate.For(config, dtype);
        Config = config;
        Model = model;
        Device = device;
        DType = dtype;
        _gemmaTokenizer = gemmaTokenizer;
        _jinaTokenizer = jinaTokenizer;
        _gemma = gemma;
        _jina = jina;
        _dit = dit;
        _vae = vae;
    }

    /// <summary>CUDA with bf16 when a GPU is usable, otherwise the CPU in fp32 (design.md §5).</summary>
    public static (Device Device, ScalarType DType) DefaultDevice() =>
        torch.cuda.is_available() ? (torch.CUDA, ScalarType.BFloat16) : (torch.CPU, ScalarType.Float32);

    /// <summary>
    /// Encoders rest on the device only when all resident. Off the device they keep the pipeline's dtype: bf16 on the
    /// CPU works in TorchSharp (torchsharp-notes §1) and halves host memory against fp32.
    /// </summary>
    private static Device EncoderHomeFor(MemoryPlan plan, Device device) => plan == MemoryPlan.AllResident ? device : torch.CPU;

    /// <summary>
    /// Loads every network from a model folder in the Hugging Face layout. <see cref="ModelPlan.For"/> plans the folder
    /// first — each component's settings from its own config.json (<paramref name="config"/>'s presets only where a
    /// component has none), every tensor name and shape, the LoRA adapters — exactly as <c>models verify</c> does, and
    /// any problem is an error naming the tensors before anything is allocated.
    /// Options default to <see cref="PipelineOptions.FromEnvironment"/>.
    /// </summary>
    public static NewBiePipeline Load(string folder, PipelineConfig config, Device? device = null, ScalarType? dtype = null,
        PipelineOptions? options = null)
    {
        var plan = ModelPlan.For(folder, config);
        plan.EnsureLoadable();
        config = plan.Config;
        options ??= PipelineOptions.FromEnvironment();
        var (defaultDevice, defaultType) = DefaultDevice();
        var dev = device ?? defaultDevice;
        var type = dtype ?? defaultType;
        var layout = new ModelFolder(folder);

        var clock = Stopwatch.StartNew();
        var gemmaTokenizer = GemmaTokenizer.FromFile(layout.GemmaTokenizer);
        var jinaTokenizer = XlmRobertaTokenizer.FromFile(layout.JinaTokenizer);
        CheckVocabulary("text_encoder/tokenizer.json", gemmaTokenizer.VocabSize, config.Gemma.VocabSize);
        CheckVocabulary("clip_model/tokenizer.json", jinaTokenizer.VocabSize, config.Jina.VocabSize);

        var loaded = new List<IDisposable>();
        try
        {
            var encoderHome = EncoderHomeFor(options.MemoryPlan, dev);
            var gemma = GemmaTextEncoder.Load(layout.GemmaWeights, config.Gemma, encoderHome, type); loaded.Add(gemma);
            var jina = JinaTextEncoder.Load(layout.JinaWeights, config.Jina, encoderHome, type); loaded.Add(jina);
            var dit = NextDiT.Load(layout.TransformerWeights, config.NextDiT, dev, type); loaded.Add(dit);
            var vae = FluxVaeDecoder.Load(layout.VaeWeights, config.Vae, dev, type); loaded.Add(vae);
            foreach (var m in new nn.Module[] { gemma, jina, dit, vae }) m.eval();
            var info = new ModelInfo(config.Id, config.IsTiny, dev.ToString(), type.ToString(), clock.Elapsed, options.MemoryPlan);
            return new NewBiePipeline(config, info, dev, type, gemmaTokenizer, jinaTokenizer, gemma, jina, dit, vae, options) { Plan = plan };
        }
        catch
        {
            foreach (var m in loaded) m.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Any architecture (the full one included) with random weights, placed as <paramref name="options"/>' plan says, and
    /// the tiny tokenizers written to <paramref name="scratchFolder"/> (their ids are valid in every vocabulary): for
    /// measuring memory without the released weights (bench/NewBie.Bench --vram).
    /// </summary>
    internal static NewBiePipeline CreateRandom(PipelineConfig config, Device device, ScalarType dtype, PipelineOptions options, string scratchFolder)
    {
        config.Validate();
        var layout = new ModelFolder(scratchFolder);
        Directory.CreateDirectory(layout.TextEncoder);
        Directory.CreateDirectory(layout.ClipModel);
        TinyTokenizers.Write(layout.TextEncoder, layout.ClipModel);
        var clock = Stopwatch.StartNew();
        var home = EncoderHomeFor(options.MemoryPlan, device);
        var gemma = GemmaTextEncoder.CreateRandom(config.Gemma, 1, home, dtype);
        var jina = JinaTextEncoder.CreateRandom(config.Jina, 2, home, dtype);
        var dit = NextDiT.CreateRandom(config.NextDiT, 3, device, dtype);
        var vae = FluxVaeDecoder.CreateRandom(config.Vae, 4, device, dtype);
        foreach (var m in new nn.Module[] { gemma, jina, dit, vae }) m.eval();
        var info = new ModelInfo(config.Id, config.IsTiny, device.ToString(), dtype.ToString(), clock.Elapsed, options.MemoryPlan);
        return new NewBiePipeline(config, info, device, dtype, GemmaTokenizer.FromFile(layout.GemmaTokenizer),
            XlmRobertaTokenizer.FromFile(layout.JinaTokenizer), gemma, jina, dit, vae, options);
    }

    private static void CheckVocabulary(string file, int tokenizerIds, int embeddingRows)
    {
        if (tokenizerIds > embeddingRows)
            throw new WeightLoadException($"{file} has {tokenizerIds} ids but the embedding has only {embeddingRows} rows");
    }

    public PromptReport Inspect(string prompt, string systemPrompt) =>
        PromptTemplate.Inspect(prompt, systemPrompt, _gemmaTokenizer, _jinaTokenizer);

    public GenerationResult Generate(GenerationRequest request, IProgress<StepProgress>? progress, CancellationToken cancellationToken)
    {
        Validate(request);
        lock (_gate)
        {
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            var evicted = new List<Conditioning>();
            try
            {
                return Run(request, progress, evicted, cancellationToken);
            }
            finally
            {
                foreach (var c in evicted) PromptCache.Dispose(c);
            }
        }
    }

    private GenerationResult Run(GenerationRequest request, IProgress<StepProgress>? progress, List<Conditioning> evicted,
        CancellationToken cancellationToken)
    {
        progress?.Report(new StepProgress(GenerationStage.Encoding, 0, request.Steps, 0, request.Count));
        // The negative prompt gets the positive prompt's sentence (as the official demo does); an empty one stays empty.
        var system = PromptTemplate.ResolveSystemPrompt(request.Prompt, request.SystemPrompt);
        _faults?.Check(PipelineStage.Encode);
        var (cond, promptReport) = Encode(request.Prompt, system, evicted);
        var (uncond, negativeReport) = Encode(request.NegativePrompt, system, evicted);

        var images = new List<GeneratedImage>(request.Count);
        var cfg = CfgSettings.From(request);
        for (var i = 0; i < request.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var imageScope = torch.NewDisposeScope();
            var seed = request.Seed + i;
            var noise = Noise.FromSeed(seed, request.Width, request.Height, Config.NextDiT.InChannels, Device, DType);
            _faults?.Check(PipelineStage.Denoise);
            var latent = Samplers.Sample(request.Sampler, noise, request.Steps, request.Shift,
                Guidance.For(_dit, cond, uncond, cfg), new DenoiseReporting(progress, i, request.Count), cancellationToken);
            cancellationToken.ThrowIfCancellationRequested();
            progress?.Report(new StepProgress(GenerationStage.Decoding, request.Steps, request.Steps, i, request.Count));
            _faults?.Check(PipelineStage.Vae);
            var decoded = _vae.Decode(latent.to(DType), request.TiledDecode ? VaeTiling.Default : null);
            var rgb = FluxVaeDecoder.ToRgb(decoded)[0];
            images.Add(new GeneratedImage(i, request.Width, request.Height, seed, rgb));
        }
        return new GenerationResult(images, promptReport, negativeReport);
    }

    /// <summary>
    /// One prompt → its DiT conditioning. Each prompt is encoded alone with no padding, so every attention call sees
    /// uniform lengths and needs no mask (the fast SDPA path on GPU); that equals the official padded batch.
    /// The result comes from the prompt cache when the same token ids were encoded before.
    /// </summary>
    private (Conditioning, PromptReport) Encode(string prompt, string systemPrompt, List<Conditioning> evicted)
    {
        var texts = PromptTemplate.Apply(prompt, systemPrompt);
        var gemmaTokens = _gemmaTokenizer.Encode(texts.GemmaText);
        var jinaTokens = _jinaTokenizer.Encode(texts.JinaText);
        var report = new PromptReport(gemmaTokens.Count, gemmaTokens.Dropped, jinaTokens.Count, jinaTokens.Dropped, texts.SystemPrompt);

        var key = PromptCache.Key(gemmaTokens.Ids, jinaTokens.Ids);
        var hit = _promptCache.TryGet(key, out var cached);
        Interlocked.Increment(ref hit ? ref _promptCacheHits : ref _promptCacheMisses);
        PromptCacheLookup?.Invoke(hit);
        if (hit) return (cached, report);

        var gemmaIds = torch.tensor(gemmaTokens.Ids.Select(i => (long)i).ToArray(), dtype: int64, device: Device).unsqueeze(0);
        var gemmaMask = torch.ones_like(gemmaIds);
        var jinaIds = torch.tensor(jinaTokens.Ids.Select(i => (long)i).ToArray(), dtype: int64, device: Device).unsqueeze(0);
        var jinaMask = torch.ones_like(jinaIds);

        Interlocked.Increment(ref _encoderRuns);
        // Off-device encoders return their outputs where they ran; the DiT reads them on its device in its dtype.
        var features = RunEncoder(_gemma, "gemma", () => _gemma.forward(gemmaIds, gemmaMask)).to(DType, Device);
        var pooled = RunEncoder(_jina, "jina", () => _jina.forward(jinaIds, jinaMask)).to(DType, Device);
        var conditioning = new Conditioning(features, gemmaMask, pooled);
        _promptCache.Add(key, conditioning, evicted);
        return (conditioning, report);
    }

    /// <summary>
    /// Runs one encoder where the plan says. Encoders on demand go to the device for this call only and back after,
    /// one at a time, so the device holds at most the larger encoder beside the DiT. The move back is a device→host
    /// copy, not a reload from disk; Module.to disposes the replaced tensors, so the device copy is freed at once.
    /// </summary>
    private Tensor RunEncoder(nn.Module encoder, string name, Func<Tensor> forward)
    {
        if (MemoryPlan != MemoryPlan.EncodersOnDemand)
        {
            EncoderRunning?.Invoke(name, ParameterDevice(encoder));
            return forward();
        }
        encoder.to(Device);
        Interlocked.Increment(ref _encoderMoves);
        try
        {
            EncoderRunning?.Invoke(name, ParameterDevice(encoder));
            return forward();
        }
        finally
        {
            encoder.to(EncoderHome);
            Interlocked.Increment(ref _encoderMoves);
        }
    }

    private static Device ParameterDevice(nn.Module module) => module.parameters().First().device;

    /// <summary>The devices the parameters of each network are on now (tests and diagnostics).</summary>
    internal IReadOnlyDictionary<string, Device[]> ParameterDevices() => new Dictionary<string, Device[]>
    {
        ["gemma"] = Devices(_gemma), ["jina"] = Devices(_jina), ["nextdit"] = Devices(_dit), ["vae"] = Devices(_vae),
    };

    private static Device[] Devices(nn.Module module) =>
        module.parameters().Select(p => p.device).DistinctBy(d => d.ToString()).ToArray();

    /// <summary>
    /// What a request needs on the device beyond what is resident (design.md §5 admission), from the memory estimate.
    /// Nothing on the CPU: there the "device" is host memory, which admission does not manage.
    /// </summary>
    public MemoryNeed EstimateMemory(GenerationRequest request)
    {
        if (Device.type != DeviceType.CUDA) return default;
        var resident = MemoryEstimate.ResidentBytes(MemoryPlan);
        var peak = MemoryEstimate.PeakBytes(MemoryPlan, request.Width, request.Height, request.Count, request.TiledDecode);
        return new MemoryNeed(resident, peak - resident - MemoryEstimate.RuntimeOverheadBytes);
    }

    /// <summary>Engine-level limits only; the server applies its own (stricter) policy before a job is accepted.</summary>
    public static void Validate(GenerationRequest r)
    {
        if (r.Prompt is null) throw new ArgumentException("prompt is required");
        if (r.Width <= 0 || r.Height <= 0 || r.Width % 16 != 0 || r.Height % 16 != 0)
            throw new ArgumentException($"width and height must be positive multiples of 16, got {r.Width}×{r.Height}");
        if (r.Steps < 1) throw new ArgumentException($"steps must be at least 1, got {r.Steps}");
        if (r.Count < 1) throw new ArgumentException($"count must be at least 1, got {r.Count}");
        if (!(r.Shift > 0) || !double.IsFinite(r.Shift)) throw new ArgumentException($"shift must be positive, got {r.Shift}");
        if (!(r.CfgTrunc is >= 0 and <= 1)) throw new ArgumentException($"cfg_trunc must be 0-1, got {r.CfgTrunc}");
        if (!(r.RenormCfg >= 0) || !double.IsFinite(r.RenormCfg)) throw new ArgumentException($"renorm must be 0 or more, got {r.RenormCfg}");
    }

    public void Dispose()
    {
        _promptCache.Dispose();
        _gemma.Dispose();
        _jina.Dispose();
        _dit.Dispose();
        _vae.Dispose();
    }
}
