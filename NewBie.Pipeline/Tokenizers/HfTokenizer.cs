using System.Text.Json;

namespace NewBie.Pipeline.Tokenizers;

/// <summary>
/// The Hugging Face <c>tokenizers</c> encode pipeline driven by a tokenizer.json: added tokens are cut out of the raw text
/// first, each remaining segment is normalized (then cut again at added tokens marked <c>normalized</c>), pre-tokenized into
/// words and encoded by the model; the post-processor's template wraps the result in its special tokens.
/// </summary>
internal sealed class HfTokenizer
{
    private readonly AddedTokenMatcher _rawAdded;
    private readonly AddedTokenMatcher _normalizedAdded;
    private readonly INormalizer? _normalizer;
    private readonly IPreTokenizer? _preTokenizer;
    private readonly Dictionary<string, int> _addedIds;

    public ITokenModel Model { get; }

    /// <summary>Template ids before the text (<c>&lt;bos&gt;</c>, <c>&lt;s&gt;</c>).</summary>
    public int[] Prefix { get; }

    /// <summary>Template ids after the text (<c>&lt;/s&gt;</c>).</summary>
    public int[] Suffix { get; }

    /// <summary>One more than the largest id of the model or the added tokens.</summary>
    public int VocabSize { get; }

    private HfTokenizer(ITokenModel model, IReadOnlyList<AddedToken> added, INormalizer? normalizer, IPreTokenizer? preTokenizer, int[] prefix, int[] suffix)
    {
        Model = model;
        _normalizer = normalizer;
        _preTokenizer = preTokenizer;
        _rawAdded = new AddedTokenMatcher(added.Where(t => !t.Normalized || normalizer is null));
        _normalizedAdded = new AddedTokenMatcher(added.Where(t => t.Normalized && normalizer is not null));
        Prefix = prefix;
        Suffix = suffix;
        _addedIds = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var t in added) _addedIds[t.Content] = t.Id;
        VocabSize = Math.Max(model.MaxId, added.Count == 0 ? -1 : added.Max(t => t.Id)) + 1;
    }

    public static HfTokenizer Load(Stream json)
    {
        using var buffer = new MemoryStream();
        json.CopyTo(buffer);
        var reader = new Utf8JsonReader(buffer.GetBuffer().AsSpan(0, (int)buffer.Length), new JsonReaderOptions { MaxDepth = 256 });
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) throw new InvalidDataException("tokenizer.json is not a JSON object");
        ITokenModel? model = null;
        var sections = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var name = reader.GetString()!;
            reader.Read();
            if (name == "model") model = ModelReader.Read(ref reader);
            else
            {
                using var doc = JsonDocument.ParseValue(ref reader);
                sections[name] = doc.RootElement.Clone();
            }
        }
        if (model is null) throw new InvalidDataException("tokenizer.json has no model");
        JsonElement Section(string name) => sections.TryGetValue(name, out var e) ? e : default;

        var added = Section("added_tokens") is { ValueKind: JsonValueKind.Array } a ? a.EnumerateArray().Select(AddedToken.FromJson).ToList() : [];
        var normalizer = Section("normalizer") is { ValueKind: JsonValueKind.Object } n ? Normalizers.FromJson(n) : null;
        var preTokenizer = Section("pre_tokenizer") is { ValueKind: JsonValueKind.Object } p ? PreTokenizers.FromJson(p) : null;
        var (prefix, suffix) = Section("post_processor") is { ValueKind: JsonValueKind.Object } post ? Template(post) : ([], []);
        return new HfTokenizer(model, added, normalizer, preTokenizer, prefix, suffix);
    }

    /// <summary>The ids a single-sequence post-processor puts before and after the text.</summary>
    private static (int[] Prefix, int[] Suffix) Template(JsonElement post)
    {
        if (post.ValueKind == JsonValueKind.Null) return ([], []);
        var type = post.GetProperty("type").GetString();
        switch (type)
        {
            case "TemplateProcessing":
                var specials = post.GetProperty("special_tokens");
                List<int> before = [], after = [];
                var seenSequence = false;
                foreach (var piece in post.GetProperty("single").EnumerateArray())
                {
                    if (piece.TryGetProperty("Sequence", out _))
                    {
                        seenSequence = true;
                        continue;
                    }
                    var name = piece.GetProperty("SpecialToken").GetProperty("id").GetString()!;
                    var ids = specials.GetProperty(name).GetProperty("ids").EnumerateArray().Select(i => i.GetInt32());
                    (seenSequence ? after : before).AddRange(ids);
                }
                return ([.. before], [.. after]);
            case "RobertaProcessing" or "BertProcessing":
                return ([post.GetProperty("cls")[1].GetInt32()], [post.GetProperty("sep")[1].GetInt32()]);
            default:
                throw new NotSupportedException($"tokenizer.json post_processor type '{type}' is not supported");
        }
    }

    /// <summary>The id of a token string (vocabulary or added token), or null.</summary>
    public int? TokenId(string token) => _addedIds.TryGetValue(token, out var id) || Model.TryGetId(token, out id) ? id : null;

    /// <summary>The ids of the text alone, without the template's special tokens.</summary>
    public List<int> EncodeText(string text)
    {
        var ids = new List<int>();
        var words = new List<TextSplit>();
        foreach (var (start, end, token) in _rawAdded.Split(text))
        {
            if (token is not null)
            {
                ids.Add(token.Id);
                continue;
            }
            var normalized = _normalizer is null ? text[start..end] : _normalizer.Normalize(text[start..end]);
            foreach (var (s, e, normalizedToken) in _normalizedAdded.Split(normalized))
            {
                if (normalizedToken is not null)
                {
                    ids.Add(normalizedToken.Id);
                    continue;
                }
                words.Clear();
                var split = new TextSplit(normalized[s..e], start == 0 && s == 0);
                if (_preTokenizer is null) words.Add(split);
                else _preTokenizer.Split(split, words);
                foreach (var word in words) Model.Tokenize(word.Text, ids);
            }
        }
        return ids;
    }

    /// <summary>
    /// The text's ids wrapped in the template, truncated to at most <paramref name="maxLength"/> ids as Hugging Face does
    /// (the text is cut, the template tokens stay), and how many text ids were cut.
    /// </summary>
    public (int[] Ids, int Dropped) Encode(string text, int maxLength = int.MaxValue)
    {
        var body = EncodeText(text);
        var room = Math.Max(0, maxLength - Prefix.Length - Suffix.Length);
        var kept = Math.Min(room, body.Count);
        var ids = new int[Prefix.Length + kept + Suffix.Length];
        Prefix.CopyTo(ids, 0);
        body.CopyTo(0, ids, Prefix.Length, kept);
        Suffix.CopyTo(ids, Prefix.Length + kept);
        return (ids, body.Count - kept);
    }
}
