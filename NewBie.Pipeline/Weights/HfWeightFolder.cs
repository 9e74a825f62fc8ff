namespace NewBie.Pipeline.Weights;

/// <summary>
/// Picks the Hugging Face weights in a released component folder. The NewBie repository's <c>text_encoder/</c> and
/// <c>clip_model/</c> hold the HF-format checkpoint next to a single-file repack of the same weights
/// (model-spec §7), which <see cref="Checkpoint.Open"/> alone would refuse as ambiguous.
/// </summary>
public static class HfWeightFolder
{
    private static readonly string[] StandardNames = ["model.safetensors.index.json", "model.safetensors"];

    /// <summary>The standard HF file in a folder when there is one; otherwise the path unchanged.</summary>
    public static string Resolve(string folderOrFile)
    {
        if (!Directory.Exists(folderOrFile)) return folderOrFile;
        return StandardNames.Select(n => Path.Combine(folderOrFile, n)).FirstOrDefault(File.Exists) ?? folderOrFile;
    }
}
