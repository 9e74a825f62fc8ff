using System.Text.RegularExpressions;

namespace NewBie.Host.Studio;

/// <summary>
/// Tags a user wrote before, most used first: what the editor offers while they type. Only the user's own prompts —
/// no tag list ships with the server (the public Danbooru tag dumps carry no licence that allows redistributing them).
/// </summary>
public static partial class TagSuggestions
{
    /// <summary>How many of a user's latest prompts are read.</summary>
    public const int PromptsRead = 500;

    public static IReadOnlyList<string> FromPrompts(IEnumerable<string> prompts, int max = 300) =>
        prompts.SelectMany(Tags)
            .GroupBy(t => t, StringComparer.Ordinal)
            .OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal)
            .Take(max).Select(g => g.Key).ToList();

    /// <summary>The tags of one prompt: markup removed, split at commas and line breaks, trimmed.</summary>
    public static IEnumerable<string> Tags(string prompt) =>
        Separators().Split(Markup().Replace(prompt, ","))
            .Select(t => t.Trim())
            .Where(t => t.Length is >= 2 and <= 60)
            .Distinct(StringComparer.Ordinal);

    /// <summary>Suggestions for the tag being typed (the text after the field's last comma), leaving out those already in the field.</summary>
    public static IReadOnlyList<string> For(IReadOnlyList<string> known, string fieldValue, int max = 10)
    {
        var parts = fieldValue.Split(',');
        var partial = parts[^1].Trim();
        var present = parts[..^1].Select(p => p.Trim()).ToHashSet(StringComparer.Ordinal);
        return known.Where(t => !present.Contains(t) && t != partial && (partial.Length == 0 || t.Contains(partial, StringComparison.OrdinalIgnoreCase)))
            .Take(max).ToList();
    }

    /// <summary>The field's value with the tag being typed replaced by <paramref name="tag"/>.</summary>
    public static string Complete(string fieldValue, string tag)
    {
        var comma = fieldValue.LastIndexOf(',');
        var head = comma < 0 ? "" : fieldValue[..(comma + 1)] + " ";
        return head.TrimStart() + tag + ", ";
    }

    [GeneratedRegex("<[^>]*>")]
    private static partial Regex Markup();

    [GeneratedRegex("[,\\r\\n]+")]
    private static partial Regex Separators();
}
