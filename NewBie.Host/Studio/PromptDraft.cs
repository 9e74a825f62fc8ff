using System.Text;
using System.Xml;

namespace NewBie.Host.Studio;

/// <summary>One field of a block: its element name and its comma-separated tags (or text).</summary>
public sealed class PromptField(string name, string value = "")
{
    public string Name { get; } = name;
    public string Value { get; set; } = value;
}

/// <summary>A character block: the fields of model-spec §6 in their order, empty ones left out of the XML.</summary>
public sealed class CharacterBlock
{
    public static readonly string[] FieldNames = ["n", "gender", "appearance", "clothing", "expression", "action", "interaction", "position"];

    public List<PromptField> Fields { get; } = FieldNames.Select(n => new PromptField(n)).ToList();
}

/// <summary>
/// NewBie's XML prompt as the editor builds it (model-spec §6): character blocks, then general_tags, then a caption.
/// Written as the official example lays it out (2-space indent, one block per paragraph); read back from any prompt of
/// that shape, so a prompt from the gallery opens in the builder. The text is sent as written: the model reads it raw.
/// </summary>
public sealed class PromptDraft
{
    public static readonly string[] GeneralFieldNames = ["count", "style", "artists", "background", "environment", "perspective",
        "lighting", "atmosphere", "quality", "objects", "body_type", "resolution", "other", "extra_tags"];

    public List<CharacterBlock> Characters { get; } = [];

    public List<PromptField> GeneralTags { get; } = GeneralFieldNames.Select(n => new PromptField(n)).ToList();

    public string Caption { get; set; } = "";

    public static PromptDraft WithOneCharacter()
    {
        var draft = new PromptDraft();
        draft.Characters.Add(new CharacterBlock());
        return draft;
    }

    public void Move(int index, int by)
    {
        var to = index + by;
        if (index < 0 || index >= Characters.Count || to < 0 || to >= Characters.Count) return;
        (Characters[index], Characters[to]) = (Characters[to], Characters[index]);
    }

    /// <summary>Characters are numbered by their place, so reordering renumbers them.</summary>
    public string ToXml()
    {
        var xml = new StringBuilder();
        for (var i = 0; i < Characters.Count; i++) Block(xml, $"character_{i + 1}", Characters[i].Fields);
        Block(xml, "general_tags", GeneralTags);
        if (Caption.Trim() is { Length: > 0 } caption) xml.Append("<caption>").Append(Escape(caption)).Append("</caption>\n");
        return xml.ToString().TrimEnd();
    }

    private static void Block(StringBuilder xml, string name, IEnumerable<PromptField> fields)
    {
        var filled = fields.Where(f => !string.IsNullOrWhiteSpace(f.Value)).ToList();
        if (filled.Count == 0) return;
        xml.Append('<').Append(name).Append(">\n");
        foreach (var field in filled)
            xml.Append("  <").Append(field.Name).Append('>').Append(Escape(field.Value.Trim())).Append("</").Append(field.Name).Append(">\n");
        xml.Append("</").Append(name).Append(">\n\n");
    }

    private static string Escape(string text) => text.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;");

    /// <summary>
    /// The draft a prompt describes, or null when it is not of the builder's shape (plain text, other elements,
    /// malformed XML): such a prompt stays in the text editor. Parsed like the server parses prompts: no DTDs.
    /// </summary>
    public static PromptDraft? FromXml(string prompt)
    {
        if (!Api.PromptXml.LooksLikeXml(prompt)) return null;
        var settings = new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit, XmlResolver = null, IgnoreComments = true, IgnoreWhitespace = true };
        var draft = new PromptDraft();
        try
        {
            using var reader = XmlReader.Create(new StringReader($"<prompt>{prompt}</prompt>"), settings);
            reader.ReadStartElement("prompt");
            while (reader.NodeType == XmlNodeType.Element)
            {
                var name = reader.LocalName;
                if (name == "caption")
                {
                    draft.Caption = reader.ReadElementContentAsString();
                    continue;
                }
                List<PromptField> fields;
                if (name == "general_tags") fields = draft.GeneralTags;
                else if (name.StartsWith("character_", StringComparison.Ordinal))
                {
                    var character = new CharacterBlock();
                    draft.Characters.Add(character);
                    fields = character.Fields;
                }
                else return null;
                if (!ReadFields(reader, fields)) return null;
            }
            return reader.NodeType == XmlNodeType.EndElement ? draft : null;
        }
        catch (XmlException)
        {
            return null;
        }
    }

    private static bool ReadFields(XmlReader reader, List<PromptField> fields)
    {
        if (reader.IsEmptyElement)
        {
            reader.Read();
            return true;
        }
        reader.ReadStartElement();
        while (reader.NodeType == XmlNodeType.Element)
        {
            if (fields.FirstOrDefault(f => f.Name == reader.LocalName) is not { } field) return false;
            field.Value = reader.ReadElementContentAsString();
        }
        if (reader.NodeType != XmlNodeType.EndElement) return false;
        reader.ReadEndElement();
        return true;
    }
}
