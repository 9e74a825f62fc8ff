using System.Text.Json;

namespace NewBie.Pipeline.Tokenizers;

/// <summary>A piece of normalized text on its way to the model; <see cref="AtOrigin"/>: it starts the original text.</summary>
internal readonly record struct TextSplit(string Text, bool AtOrigin);

/// <summary>One step of a tokenizer.json <c>pre_tokenizer</c>: cuts a split into the words the model encodes one by one.</summary>
internal interface IPreTokenizer
{
    /// <summary>Appends the non-empty pieces of <paramref name="split"/> to <paramref name="output"/>.</summary>
    void Split(TextSplit split, List<TextSplit> output);
}

internal static class PreTokenizers
{
    public static IPreTokenizer? FromJson(JsonElement e)
    {
        if (e.ValueKind == JsonValueKind.Null) return null;
        var type = e.GetProperty("type").GetString();
        return type switch
        {
            "Sequence" => new SequencePreTokenizer([.. e.GetProperty("pretokenizers").EnumerateArray().Select(p => FromJson(p)!)]),
            "Metaspace" => MetaspacePreTokenizer.FromJson(e),
            "WhitespaceSplit" => new WhitespaceSplitPreTokenizer(),
            "Split" => new SplitPreTokenizer(
                TextPattern.FromJson(e.GetProperty("pattern")),
                Enum.Parse<SplitBehavior>(e.GetProperty("behavior").GetString()!),
                e.TryGetProperty("invert", out var inv) && inv.GetBoolean()),
            _ => throw new NotSupportedException($"tokenizer.json pre_tokenizer type '{type}' is not supported"),
        };
    }

    /// <summary>
    /// Hugging Face's <c>NormalizedString::split</c>: the text cut into alternating runs of (start, end, isMatch) is regrouped
    /// by <paramref name="behavior"/>, and empty pieces are dropped.
    /// </summary>
    public static void Cut(TextSplit split, List<(int Start, int End, bool IsMatch)> runs, SplitBehavior behavior, List<TextSplit> output)
    {
        var pieces = new List<(int Start, int End, bool Remove)>(runs.Count);
        var previousMatch = false;
        switch (behavior)
        {
            case SplitBehavior.Removed:
                foreach (var r in runs) pieces.Add((r.Start, r.End, r.IsMatch));
                break;
            case SplitBehavior.Isolated:
                foreach (var r in runs) pieces.Add((r.Start, r.End, false));
                break;
            case SplitBehavior.Contiguous:
                foreach (var r in runs)
                {
                    if (r.IsMatch == previousMatch && pieces.Count > 0) pieces[^1] = (pieces[^1].Start, r.End, false);
                    else pieces.Add((r.Start, r.End, false));
                    previousMatch = r.IsMatch;
                }
                break;
            case SplitBehavior.MergedWithPrevious:
                foreach (var r in runs)
                {
                    if (r.IsMatch && !previousMatch && pieces.Count > 0) pieces[^1] = (pieces[^1].Start, r.End, false);
                    else pieces.Add((r.Start, r.End, false));
                    previousMatch = r.IsMatch;
                }
                break;
            case SplitBehavior.MergedWithNext:
                for (var i = runs.Count - 1; i >= 0; i--)
                {
                    var r = runs[i];
                    if (r.IsMatch && !previousMatch && pieces.Count > 0) pieces[^1] = (r.Start, pieces[^1].End, false);
                    else pieces.Add((r.Start, r.End, false));
                    previousMatch = r.IsMatch;
                }
                pieces.Reverse();
                break;
        }
        foreach (var (start, end, remove) in pieces)
            if (!remove && end > start) output.Add(new TextSplit(split.Text[start..end], split.AtOrigin && start == 0));
    }

    /// <summary>The whole text as runs of matches and the gaps between them.</summary>
    public static List<(int Start, int End, bool IsMatch)> Runs(int length, IEnumerable<(int Start, int Length)> matches, bool invert = false)
    {
        var runs = new List<(int, int, bool)>();
        var at = 0;
        foreach (var (start, len) in matches)
        {
            if (start > at) runs.Add((at, start, invert));
            runs.Add((start, start + len, !invert));
            at = start + len;
        }
        if (at < length) runs.Add((at, length, invert));
        return runs;
    }
}

internal enum SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous }

internal sealed class SequencePreTokenizer(IPreTokenizer[] steps) : IPreTokenizer
{
    public void Split(TextSplit split, List<TextSplit> output)
    {
        List<TextSplit> current = [split];
        foreach (var step in steps)
        {
            var next = new List<TextSplit>(current.Count);
            foreach (var s in current) step.Split(s, next);
            current = next;
        }
        output.AddRange(current);
    }
}

internal sealed class SplitPreTokenizer(TextPattern pattern, SplitBehavior behavior, bool invert) : IPreTokenizer
{
    public void Split(TextSplit split, List<TextSplit> output) =>
        PreTokenizers.Cut(split, PreTokenizers.Runs(split.Text.Length, pattern.Matches(split.Text), invert), behavior, output);
}

/// <summary>Splits on Unicode whitespace and drops it.</summary>
internal sealed class WhitespaceSplitPreTokenizer : IPreTokenizer
{
    public void Split(TextSplit split, List<TextSplit> output)
    {
        var text = split.Text;
        var matches = new List<(int, int)>();
        for (var i = 0; i < text.Length; i++)
            if (char.IsWhiteSpace(text[i])) matches.Add((i, 1));
        PreTokenizers.Cut(split, PreTokenizers.Runs(text.Length, matches), SplitBehavior.Removed, output);
    }
}

internal enum PrependScheme { Always, First, Never }

/// <summary>
/// SentencePiece's word boundary marker: spaces become <c>▁</c>, a <c>▁</c> is prepended (always, only to the split that starts
/// the text, or never) and, with <c>split</c>, the text is cut before every <c>▁</c>.
/// </summary>
internal sealed class MetaspacePreTokenizer(char replacement, PrependScheme scheme, bool splitWords) : IPreTokenizer
{
    public static MetaspacePreTokenizer FromJson(JsonElement e)
    {
        var replacement = e.GetProperty("replacement").GetString()!;
        if (replacement.Length != 1) throw new NotSupportedException($"Metaspace replacement '{replacement}' is not one UTF-16 character");
        // Files written before prepend_scheme existed say add_prefix_space instead.
        var scheme = e.TryGetProperty("prepend_scheme", out var p) && p.ValueKind == JsonValueKind.String
            ? Enum.Parse<PrependScheme>(p.GetString()!, ignoreCase: true)
            : e.TryGetProperty("add_prefix_space", out var a) && !a.GetBoolean() ? PrependScheme.Never : PrependScheme.Always;
        var doSplit = !e.TryGetProperty("split", out var s) || s.GetBoolean();
        return new MetaspacePreTokenizer(replacement[0], scheme, doSplit);
    }

    public void Split(TextSplit split, List<TextSplit> output)
    {
        var text = split.Text.Replace(' ', replacement);
        var prepend = scheme == PrependScheme.Always || (scheme == PrependScheme.First && split.AtOrigin);
        if (prepend && (text.Length == 0 || text[0] != replacement)) text = replacement + text;
        var marked = split with { Text = text };
        if (!splitWords)
        {
            if (text.Length > 0) output.Add(marked);
            return;
        }
        var matches = new List<(int, int)>();
        for (var i = 0; i < text.Length; i++)
            if (text[i] == replacement) matches.Add((i, 1));
        PreTokenizers.Cut(marked, PreTokenizers.Runs(text.Length, matches), SplitBehavior.MergedWithNext, output);
    }
}
