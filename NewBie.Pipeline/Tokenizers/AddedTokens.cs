using System.Text.Json;

namespace NewBie.Pipeline.Tokenizers;

/// <summary>An entry of a tokenizer.json's <c>added_tokens</c>.</summary>
internal sealed record AddedToken(int Id, string Content, bool Special, bool Normalized, bool LStrip, bool RStrip, bool SingleWord)
{
    public static AddedToken FromJson(JsonElement e) => new(
        e.GetProperty("id").GetInt32(),
        e.GetProperty("content").GetString()!,
        Flag(e, "special"), Flag(e, "normalized"), Flag(e, "lstrip"), Flag(e, "rstrip"), Flag(e, "single_word"));

    private static bool Flag(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.True;
}

/// <summary>
/// Finds added tokens in text the way Hugging Face's <c>AddedVocabulary</c> does: leftmost-longest, non-overlapping matches;
/// <c>lstrip</c>/<c>rstrip</c> widen a match over adjacent whitespace; <c>single_word</c> rejects a match inside a word.
/// </summary>
internal sealed class AddedTokenMatcher
{
    private readonly Dictionary<string, AddedToken> _tokens = new(StringComparer.Ordinal);
    private readonly Dictionary<string, AddedToken>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private readonly HashSet<char> _firstChars = [];
    private readonly int[] _lengthsLongestFirst;

    public AddedTokenMatcher(IEnumerable<AddedToken> tokens)
    {
        foreach (var t in tokens)
        {
            if (t.Content.Length == 0) continue;
            _tokens[t.Content] = t;
            _firstChars.Add(t.Content[0]);
        }
        _lookup = _tokens.GetAlternateLookup<ReadOnlySpan<char>>();
        _lengthsLongestFirst = [.. _tokens.Keys.Select(k => k.Length).Distinct().OrderDescending()];
    }

    /// <summary>The text cut into added tokens (with their token) and the plain text between them (token null), in order.</summary>
    public List<(int Start, int End, AddedToken? Token)> Split(string text)
    {
        var pieces = new List<(int, int, AddedToken?)>();
        var done = 0;
        for (var i = 0; i < text.Length;)
        {
            var match = _firstChars.Contains(text[i]) ? LongestAt(text, i) : null;
            if (match is null)
            {
                i++;
                continue;
            }
            var start = i;
            var stop = i + match.Content.Length;
            i = stop;
            if (match.SingleWord && ((start > 0 && IsWordChar(text[start - 1])) || (stop < text.Length && IsWordChar(text[stop])))) continue;
            if (match.LStrip)
            {
                var s = start;
                while (s > 0 && char.IsWhiteSpace(text[s - 1])) s--;
                // Whitespace already taken by the previous match stays with it.
                start = Math.Max(s, done);
            }
            if (match.RStrip)
                while (stop < text.Length && char.IsWhiteSpace(text[stop])) stop++;
            if (done < start) pieces.Add((done, start, null));
            pieces.Add((start, stop, match));
            done = stop;
        }
        if (done < text.Length) pieces.Add((done, text.Length, null));
        return pieces;
    }

    private AddedToken? LongestAt(string text, int i)
    {
        foreach (var len in _lengthsLongestFirst)
            if (i + len <= text.Length && _lookup.TryGetValue(text.AsSpan(i, len), out var t)) return t;
        return null;
    }

    private static bool IsWordChar(char c) => char.IsLetterOrDigit(c) || c == '_';
}
