using System.Text.Json;
using System.Text.RegularExpressions;

namespace NewBie.Pipeline.Tokenizers;

/// <summary>One step of a tokenizer.json <c>normalizer</c>.</summary>
internal interface INormalizer
{
    string Normalize(string text);
}

/// <summary>The normalizer types that Gemma and XLM-R tokenizer.json files use; anything else is refused by name.</summary>
internal static class Normalizers
{
    public static INormalizer? FromJson(JsonElement e)
    {
        if (e.ValueKind == JsonValueKind.Null) return null;
        var type = e.GetProperty("type").GetString();
        return type switch
        {
            "Sequence" => new SequenceNormalizer([.. e.GetProperty("normalizers").EnumerateArray().Select(n => FromJson(n)!)]),
            "Precompiled" => new PrecompiledNormalizer(Charsmap(e)),
            "Replace" => new ReplaceNormalizer(TextPattern.FromJson(e.GetProperty("pattern")), e.GetProperty("content").GetString()!),
            "Strip" => new StripNormalizer(e.GetProperty("strip_left").GetBoolean(), e.GetProperty("strip_right").GetBoolean()),
            "Prepend" => new PrependNormalizer(e.GetProperty("prepend").GetString()!),
            _ => throw new NotSupportedException($"tokenizer.json normalizer type '{type}' is not supported"),
        };
    }

    private static PrecompiledCharsmap? Charsmap(JsonElement e)
    {
        // An empty or null charsmap is what converters write for models trained with the identity rule.
        var p = e.GetProperty("precompiled_charsmap");
        if (p.ValueKind == JsonValueKind.Null) return null;
        var bytes = p.ValueKind == JsonValueKind.Array ? [.. p.EnumerateArray().Select(b => b.GetByte())] : p.GetBytesFromBase64();
        return bytes.Length == 0 ? null : PrecompiledCharsmap.Parse(bytes);
    }
}

internal sealed class SequenceNormalizer(INormalizer[] steps) : INormalizer
{
    public string Normalize(string text)
    {
        foreach (var step in steps) text = step.Normalize(text);
        return text;
    }
}

internal sealed class PrecompiledNormalizer(PrecompiledCharsmap? charsmap) : INormalizer
{
    public string Normalize(string text) => charsmap is null ? text : charsmap.Normalize(text);
}

internal sealed class ReplaceNormalizer(TextPattern pattern, string content) : INormalizer
{
    public string Normalize(string text) => pattern.Replace(text, content);
}

internal sealed class StripNormalizer(bool left, bool right) : INormalizer
{
    public string Normalize(string text)
    {
        var span = text.AsSpan();
        if (left) span = span.TrimStart();
        if (right) span = span.TrimEnd();
        return span.Length == text.Length ? text : span.ToString();
    }
}

internal sealed class PrependNormalizer(string prefix) : INormalizer
{
    public string Normalize(string text) => text.Length == 0 ? text : prefix + text;
}

/// <summary>A tokenizer.json pattern: <c>{"String": "..."}</c> (literal) or <c>{"Regex": "..."}</c>.</summary>
internal sealed class TextPattern
{
    private readonly string? _literal;
    private readonly Regex? _regex;

    private TextPattern(string? literal, Regex? regex)
    {
        _literal = literal;
        _regex = regex;
    }

    public static TextPattern FromJson(JsonElement e)
    {
        if (e.TryGetProperty("String", out var s)) return new TextPattern(s.GetString()!, null);
        if (e.TryGetProperty("Regex", out var r)) return new TextPattern(null, new Regex(r.GetString()!, RegexOptions.CultureInvariant));
        throw new NotSupportedException($"tokenizer.json pattern {e.GetRawText()} is neither String nor Regex");
    }

    public string Replace(string text, string content) =>
        _regex is not null ? _regex.Replace(text, content.Replace("$", "$$")) :
        _literal!.Length == 0 ? text : text.Replace(_literal, content, StringComparison.Ordinal);

    /// <summary>Non-overlapping matches, left to right, as (start, length); empty matches are skipped.</summary>
    public IEnumerable<(int Start, int Length)> Matches(string text)
    {
        if (_regex is not null)
        {
            foreach (Match m in _regex.Matches(text))
                if (m.Length > 0) yield return (m.Index, m.Length);
            yield break;
        }
        if (_literal!.Length == 0) yield break;
        for (var i = text.IndexOf(_literal, StringComparison.Ordinal); i >= 0; i = text.IndexOf(_literal, i + _literal.Length, StringComparison.Ordinal))
            yield return (i, _literal.Length);
    }
}
