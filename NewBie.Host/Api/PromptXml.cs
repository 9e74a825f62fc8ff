using System.Globalization;
using System.Text.RegularExpressions;
using System.Xml;

namespace NewBie.Host.Api;

/// <summary>
/// XML structured prompts. A prompt is XML when its first non-blank character opens markup: '&lt;' and a letter (a tag),
/// or '&lt;!' / '&lt;?' (a declaration), so that a DTD-led entity bomb reaches the parser that refuses it instead of the
/// text encoder. Prompts are fragments with several top-level elements, parsed inside a synthetic root with DTDs
/// prohibited, no resolver, and depth and size limits.
/// </summary>
public static partial class PromptXml
{
    private const string RootName = "prompt", RootOpen = "<" + RootName + ">", RootClose = "</" + RootName + ">";

    public static bool LooksLikeXml(string prompt)
    {
        var text = prompt.AsSpan().TrimStart();
        return text.Length >= 2 && text[0] == '<' && (char.IsLetter(text[1]) || text[1] is '!' or '?');
    }

    /// <summary>Null when well-formed; otherwise what is wrong and where (line and column in the prompt as sent).</summary>
    public static string? Check(string prompt, int maxDepth, int maxChars)
    {
        var settings = new XmlReaderSettings
        {
            DtdProcessing = DtdProcessing.Prohibit,
            XmlResolver = null,
            MaxCharactersInDocument = maxChars + RootOpen.Length + RootClose.Length,
            MaxCharactersFromEntities = 1024,
            IgnoreComments = true,
            IgnoreProcessingInstructions = false,
        };
        try
        {
            using var reader = XmlReader.Create(new StringReader(RootOpen + prompt + RootClose), settings);
            var info = (IXmlLineInfo)reader;
            while (reader.Read())
            {
                // Depth 0 is the synthetic root, so a prompt's own top-level elements are at depth 1.
                if (reader.NodeType == XmlNodeType.Element && reader.Depth > maxDepth)
                    return $"XML nested deeper than {maxDepth} levels at {Where(info.LineNumber, info.LinePosition)}.";
            }
            return null;
        }
        catch (XmlException e)
        {
            // The parser's own positions count the synthetic root: restate them in the prompt's coordinates.
            var message = TrailingPosition().Replace(e.Message, "");
            message = InlinePosition().Replace(message, m => Where(int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture)));
            message = message.Replace($"the end tag of '{RootName}'", "the end of the prompt", StringComparison.Ordinal);
            return $"Malformed XML at {Where(e.LineNumber, e.LinePosition)}: {message}";
        }
    }

    private static string Where(int line, int column) =>
        $"line {line}, column {(line == 1 ? Math.Max(1, column - RootOpen.Length) : column)}";

    [GeneratedRegex(@"\s*Line \d+, position \d+\.$")]
    private static partial Regex TrailingPosition();

    [GeneratedRegex(@"line (\d+) position (\d+)")]
    private static partial Regex InlinePosition();
}
