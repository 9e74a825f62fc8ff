using System.Xml;

namespace NewBie.Host.Api;

/// <summary>
/// XML structured prompts. A prompt is XML when its first non-blank character opens markup: '&lt;' and a letter (a tag),
/// or '&lt;!' / '&lt;?' (a declaration), so that a DTD-led entity bomb reaches the parser that refuses it instead of the
/// text encoder. Prompts are fragments with several top-level elements, parsed inside a synthetic root with DTDs
/// prohibited, no resolver, and depth and size limits.
/// </summary>
public static class PromptXml
{
    private const string RootOpen = "<prompt>", RootClose = "</prompt>";

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
            return $"Malformed XML at {Where(e.LineNumber, e.LinePosition)}: {e.Message}";
        }
    }

    private static string Where(int line, int column) =>
        $"line {line}, column {(line == 1 ? Math.Max(1, column - RootOpen.Length) : column)}";
}
