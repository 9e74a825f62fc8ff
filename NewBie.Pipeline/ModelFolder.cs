using NewBie.Pipeline.Weights;

namespace NewBie.Pipeline;

/// <summary>
/// A model folder in the Hugging Face layout of NewBie-AI/NewBie-image-Exp0.1:
/// <c>transformer/</c>, <c>text_encoder/</c> (Gemma-3 + tokenizer.json), <c>clip_model/</c> (Jina + tokenizer.json), <c>vae/</c>.
/// Resolves which weight file of each component to open; the file names are fixed here, never taken from requests.
/// </summary>
public sealed record ModelFolder(string Root)
{
    public string Transformer => Path.Combine(Root, "transformer");
    public string TextEncoder => Path.Combine(Root, "text_encoder");
    public string ClipModel => Path.Combine(Root, "clip_model");
    public string Vae => Path.Combine(Root, "vae");

    public string GemmaTokenizer => Path.Combine(TextEncoder, "tokenizer.json");
    public string JinaTokenizer => Path.Combine(ClipModel, "tokenizer.json");

    // Preferred single files of the released repository; a sharded Hugging Face index wins when present.
    public string TransformerWeights => Weights(Transformer, "diffusion_pytorch_model.safetensors");
    public string GemmaWeights => Weights(TextEncoder, "gemma3-4b-it.safetensors");
    public string JinaWeights => Weights(ClipModel, "jina-clip-v2.safetensors");
    public string VaeWeights => Weights(Vae, "diffusion_pytorch_model.safetensors");

    /// <summary>True when every component folder holds weights and the two tokenizers exist.</summary>
    public bool IsComplete => Missing().Count == 0;

    /// <summary>What is missing, as paths relative to the root (empty when complete).</summary>
    public IReadOnlyList<string> Missing()
    {
        var missing = new List<string>();
        void Need(string path)
        {
            if (!File.Exists(path)) missing.Add(Path.GetRelativePath(Root, path));
        }
        Need(TransformerWeights);
        Need(GemmaWeights);
        Need(JinaWeights);
        Need(VaeWeights);
        Need(GemmaTokenizer);
        Need(JinaTokenizer);
        return missing;
    }

    public Checkpoint OpenTransformer() => Checkpoint.Open(TransformerWeights);
    public Checkpoint OpenGemma() => Checkpoint.Open(GemmaWeights);
    public Checkpoint OpenJina() => Checkpoint.Open(JinaWeights);
    public Checkpoint OpenVae() => Checkpoint.Open(VaeWeights);

    private static string Weights(string dir, string preferred)
    {
        if (Directory.Exists(dir))
        {
            var index = Directory.GetFiles(dir, "*.safetensors.index.json");
            if (index.Length == 1) return index[0];
            var named = Path.Combine(dir, preferred);
            if (File.Exists(named)) return named;
            var files = Directory.GetFiles(dir, "*.safetensors");
            if (files.Length == 1) return files[0];
        }
        return Path.Combine(dir, preferred);
    }
}
