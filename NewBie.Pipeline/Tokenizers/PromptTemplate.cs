namespace NewBie.Pipeline.Tokenizers;

/// <summary>What each encoder reads for one prompt, and the system prompt that was put in front of Gemma's text.</summary>
public sealed record PromptTexts(string GemmaText, string JinaText, string SystemPrompt);

/// <summary>
/// NewBie's prompt templating (model-spec §2.1, §6): the system prompt is plainly concatenated in front of the prompt for
/// Gemma only; Jina reads the raw prompt; an empty prompt (the usual negative) stays empty for both, as in the official
/// pipelines and the training's caption dropout.
/// </summary>
public static class PromptTemplate
{
    /// <summary>Pick the training sentence that matches the prompt's kind.</summary>
    public const string Auto = "auto";

    /// <summary>No system prompt.</summary>
    public const string None = "none";

    /// <summary>Training's system prompt for XML captions (NB-finetune), trailing space included.</summary>
    public const string XmlSystemPrompt =
        "You are an assistant designed to generate high-quality anime images based on xml format prompts. <Prompt Start> ";

    /// <summary>Training's system prompt for tag and natural-language captions (NB-finetune), trailing space included.</summary>
    public const string TagSystemPrompt =
        "You are an assistant designed to generate high-quality anime images with the highest degree of image-text alignment based on textual prompts. <Prompt Start> ";

    /// <summary>An XML prompt: its first non-blank character is '&lt;' followed by a letter.</summary>
    public static bool IsXml(string prompt)
    {
        var s = prompt.AsSpan().TrimStart();
        return s.Length >= 2 && s[0] == '<' && char.IsLetter(s[1]);
    }

    /// <summary>
    /// "auto" (any case): the XML or the tag sentence by <see cref="IsXml"/>; "none" (any case): ""; anything else is used
    /// literally. An empty prompt gets no system prompt at all.
    /// </summary>
    public static string ResolveSystemPrompt(string prompt, string systemPrompt)
    {
        if (prompt.Length == 0) return "";
        if (string.Equals(systemPrompt, Auto, StringComparison.OrdinalIgnoreCase)) return IsXml(prompt) ? XmlSystemPrompt : TagSystemPrompt;
        if (string.Equals(systemPrompt, None, StringComparison.OrdinalIgnoreCase)) return "";
        return systemPrompt;
    }

    public static PromptTexts Apply(string prompt, string systemPrompt)
    {
        var system = ResolveSystemPrompt(prompt, systemPrompt);
        return new PromptTexts(system + prompt, prompt, system);
    }

    /// <summary>
    /// Token counts of a prompt after templating: ids each encoder actually reads (special tokens included, at most its
    /// max length) and how many truncation cut.
    /// </summary>
    public static PromptReport Inspect(string prompt, string systemPrompt, GemmaTokenizer gemma, XlmRobertaTokenizer jina)
    {
        var texts = Apply(prompt, systemPrompt);
        var g = gemma.Encode(texts.GemmaText);
        var j = jina.Encode(texts.JinaText);
        return new PromptReport(g.Count, g.Dropped, j.Count, j.Dropped, texts.SystemPrompt);
    }
}
