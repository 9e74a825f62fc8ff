using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace NewBie.Pipeline.Tokenizers;

/// <summary>
/// Small tokenizer.json files for the built-in tiny model, generated deterministically from a built-in English/tag corpus
/// (nothing can be downloaded): a Gemma-format BPE with byte fallback and a Jina/XLM-R-format Unigram with an
/// NFKC-lite charsmap, each at most <see cref="VocabSize"/> ids and laid out like the real files, so the same loaders read
/// them.
/// </summary>
public static class TinyTokenizers
{
    public const string FileName = "tokenizer.json";

    /// <summary>Ids of each tiny tokenizer, special and added tokens included (the tiny encoders' embedding rows).</summary>
    public const int VocabSize = 512;

    private const char Marker = '\u2581';

    /// <summary>Writes <c>tokenizer.json</c> into each folder, creating the folders.</summary>
    public static void Write(string gemmaDir, string jinaDir)
    {
        Directory.CreateDirectory(gemmaDir);
        Directory.CreateDirectory(jinaDir);
        File.WriteAllText(Path.Combine(gemmaDir, FileName), GemmaJson(), new UTF8Encoding(false));
        File.WriteAllText(Path.Combine(jinaDir, FileName), JinaJson(), new UTF8Encoding(false));
    }

    /// <summary>Writes both files where a model folder keeps them (<see cref="ModelFolder.GemmaTokenizer"/>, <see cref="ModelFolder.JinaTokenizer"/>).</summary>
    public static void Write(ModelFolder folder) => Write(folder.TextEncoder, folder.ClipModel);

    private static readonly string[] Corpus =
    [
        "<character_1>",
        "<n>$character_1$</n>",
        "<gender>1girl</gender>",
        "<appearance>chibi, red_eyes, blue_hair, long_hair, hair_between_eyes, head_tilt, tareme, closed_mouth</appearance>",
        "<clothing>school_uniform, serafuku, pleated_skirt, white_shirt, red_neckerchief, black_thighhighs</clothing>",
        "<expression>happy, smile, blush, looking_at_viewer, open_mouth</expression>",
        "<action>sitting, waving, holding_flower, hand_on_own_chest, arms_behind_back</action>",
        "<position>center_left, upper_body, from_side</position>",
        "</character_1>",
        "<character_2>",
        "<n>$character_2$</n>",
        "<gender>1boy</gender>",
        "<appearance>short_hair, black_hair, brown_eyes, tall, glasses</appearance>",
        "<clothing>jacket, white_shirt, necktie, black_pants, sneakers</clothing>",
        "<expression>calm, closed_eyes, light_smile</expression>",
        "<position>center_right, full_body, standing</position>",
        "</character_2>",
        "<general_tags>",
        "<count>2girls, multiple_girls, 1boy</count>",
        "<style>anime_style, digital_art, watercolor, sketch</style>",
        "<background>outdoors, cherry_blossoms, blue_sky, cloud, city, night, starry_sky, indoors, classroom</background>",
        "<atmosphere>cheerful, peaceful, warm, soft_lighting, sunset, rain</atmosphere>",
        "<quality>masterpiece, best_quality, high_resolution, very_aesthetic, absurdres</quality>",
        "<objects>flower, umbrella, book, cup, cat, bird, sword</objects>",
        "<other>depth_of_field, bokeh, lens_flare, sparkle</other>",
        "</general_tags>",
        "<caption>A girl with long silver hair stands under a cherry blossom tree at sunset, smiling at the viewer.</caption>",
        "1girl, solo, long_hair, blue_eyes, smile, school_uniform, outdoors, cherry_blossoms, looking_at_viewer, masterpiece",
        "You are an assistant designed to generate high-quality anime images based on xml format prompts. <Prompt Start>",
        "You are an assistant designed to generate high-quality anime images with the highest degree of image-text alignment based on textual prompts.",
        "The quick brown fox jumps over the lazy dog. A cat sleeps in the warm sun while the birds sing in the trees.",
        "Two friends walk along the river in the evening, talking about their favorite books and the stars above them.",
        "She is wearing a white dress and a straw hat, holding a red umbrella in the rain near the station.",
        "bad anatomy, blurry, worst quality, low quality, extra limbs, deformed hands, poorly drawn face, watermark, text",
    ];

    private static readonly string[] GemmaAdded = ["<start_of_turn>", "<end_of_turn>", "\n", "\n\n", "\n\n\n", "\t", "<b>", "</b>", "<caption>", "</caption>"];

    // Built once per process: the merge training takes a noticeable fraction of a second.
    private static readonly Lazy<string> Gemma = new(BuildGemmaJson);
    private static readonly Lazy<string> Jina = new(BuildJinaJson);

    /// <summary>Gemma layout: <c>&lt;pad&gt;</c>=0 <c>&lt;eos&gt;</c>=1 <c>&lt;bos&gt;</c>=2 <c>&lt;unk&gt;</c>=3, added tokens, 256 byte tokens, characters, merges.</summary>
    public static string GemmaJson() => Gemma.Value;

    /// <summary>
    /// XLM-R layout: <c>&lt;s&gt;</c>=0 <c>&lt;pad&gt;</c>=1 <c>&lt;/s&gt;</c>=2 <c>&lt;unk&gt;</c>=3, Unigram pieces scored by
    /// corpus frequency, <c>&lt;mask&gt;</c> last; normalizer charsmap + space-run collapse; Metaspace.
    /// </summary>
    public static string JinaJson() => Jina.Value;

    internal static string BuildGemmaJson()
    {
        var vocab = new List<string> { "<pad>", "<eos>", "<bos>", "<unk>" };
        vocab.AddRange(GemmaAdded);
        for (var b = 0; b < 256; b++) vocab.Add($"<0x{b:X2}>");
        var words = Words(Corpus.Select(line => line.Replace(' ', Marker)), splitAtMarker: true);
        foreach (var c in words.Keys.SelectMany(w => w).Distinct().Select(c => c.ToString()).Order(StringComparer.Ordinal))
            if (!vocab.Contains(c)) vocab.Add(c);
        var merges = LearnMerges(words, vocab, VocabSize);

        return Json(w =>
        {
            w.WriteString("version", "1.0");
            w.WriteNull("truncation");
            w.WriteNull("padding");
            w.WriteStartArray("added_tokens");
            foreach (var special in new[] { "<pad>", "<eos>", "<bos>", "<unk>" }) AddedToken(w, vocab.IndexOf(special), special, special: true);
            foreach (var added in GemmaAdded) AddedToken(w, vocab.IndexOf(added), added, special: false);
            w.WriteEndArray();
            w.WriteStartObject("normalizer");
            w.WriteString("type", "Replace");
            Pattern(w, "String", " ");
            w.WriteString("content", Marker.ToString());
            w.WriteEndObject();
            w.WriteStartObject("pre_tokenizer");
            w.WriteString("type", "Split");
            Pattern(w, "String", " ");
            w.WriteString("behavior", "MergedWithPrevious");
            w.WriteBoolean("invert", false);
            w.WriteEndObject();
            Template(w, ["<bos>"], [], vocab);
            w.WriteNull("decoder");
            w.WriteStartObject("model");
            w.WriteString("type", "BPE");
            w.WriteNull("dropout");
            w.WriteString("unk_token", "<unk>");
            w.WriteNull("continuing_subword_prefix");
            w.WriteNull("end_of_word_suffix");
            w.WriteBoolean("fuse_unk", true);
            w.WriteBoolean("byte_fallback", true);
            w.WriteBoolean("ignore_merges", false);
            w.WriteStartObject("vocab");
            for (var i = 0; i < vocab.Count; i++) w.WriteNumber(vocab[i], i);
            w.WriteEndObject();
            w.WriteStartArray("merges");
            foreach (var (left, right) in merges)
            {
                w.WriteStartArray();
                w.WriteStringValue(left);
                w.WriteStringValue(right);
                w.WriteEndArray();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        });
    }

    internal static string BuildJinaJson()
    {
        var rules = JinaCharsmapRules();
        var normalized = Corpus.Select(line => Collapse(Apply(rules, line)));
        var words = Words(normalized.Select(line => Marker + line.Replace(' ', Marker)), splitAtMarker: true);
        var pieces = UnigramPieces(words, VocabSize - 5);

        return Json(w =>
        {
            w.WriteString("version", "1.0");
            w.WriteNull("truncation");
            w.WriteNull("padding");
            w.WriteStartArray("added_tokens");
            string[] specials = ["<s>", "<pad>", "</s>", "<unk>"];
            for (var i = 0; i < specials.Length; i++) AddedToken(w, i, specials[i], special: true);
            AddedToken(w, 4 + pieces.Count, "<mask>", special: true, lstrip: true);
            w.WriteEndArray();
            w.WriteStartObject("normalizer");
            w.WriteString("type", "Sequence");
            w.WriteStartArray("normalizers");
            w.WriteStartObject();
            w.WriteString("type", "Precompiled");
            w.WriteBase64String("precompiled_charsmap", DoubleArrayTrie.BuildCharsmap(rules));
            w.WriteEndObject();
            w.WriteStartObject();
            w.WriteString("type", "Replace");
            Pattern(w, "Regex", " {2,}");
            w.WriteString("content", " ");
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteStartObject("pre_tokenizer");
            w.WriteString("type", "Metaspace");
            w.WriteString("replacement", Marker.ToString());
            w.WriteString("prepend_scheme", "always");
            w.WriteBoolean("split", true);
            w.WriteEndObject();
            var ids = new List<string>(specials);
            Template(w, ["<s>"], ["</s>"], ids);
            w.WriteNull("decoder");
            w.WriteStartObject("model");
            w.WriteString("type", "Unigram");
            w.WriteNumber("unk_id", 3);
            w.WriteStartArray("vocab");
            foreach (var special in specials) Piece(w, special, 0.0);
            foreach (var (piece, score) in pieces) Piece(w, piece, score);
            Piece(w, "<mask>", 0.0);
            w.WriteEndArray();
            w.WriteBoolean("byte_fallback", false);
            w.WriteEndObject();
        });
    }

    /// <summary>NFKC-lite: full-width ASCII to ASCII, the ideographic and no-break spaces and \t \n \r \f to a space, other C0 controls and DEL removed.</summary>
    private static SortedDictionary<string, string> JinaCharsmapRules()
    {
        var rules = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (var c = 0xFF01; c <= 0xFF5E; c++) rules[((char)c).ToString()] = ((char)(c - 0xFF01 + 0x21)).ToString();
        foreach (var space in "\t\n\r\f\u00A0\u3000") rules[space.ToString()] = " ";
        for (var c = 1; c < 0x20; c++) rules.TryAdd(((char)c).ToString(), "");
        rules["\u007F"] = "";
        return rules;
    }

    private static string Apply(SortedDictionary<string, string> rules, string text)
    {
        var sb = new StringBuilder(text.Length);
        foreach (var c in text) sb.Append(rules.TryGetValue(c.ToString(), out var r) ? r : c.ToString());
        return sb.ToString();
    }

    private static string Collapse(string text)
    {
        while (text.Contains("  ", StringComparison.Ordinal)) text = text.Replace("  ", " ", StringComparison.Ordinal);
        return text;
    }

    /// <summary>Word counts of the lines, each word starting at a <c>▁</c> (or a line start).</summary>
    private static SortedDictionary<string, int> Words(IEnumerable<string> lines, bool splitAtMarker)
    {
        var words = new SortedDictionary<string, int>(StringComparer.Ordinal);
        foreach (var line in lines)
        {
            var start = 0;
            for (var i = 1; i <= line.Length; i++)
            {
                if (i < line.Length && !(splitAtMarker && line[i] == Marker)) continue;
                var word = line[start..i];
                words[word] = words.GetValueOrDefault(word) + 1;
                start = i;
            }
        }
        return words;
    }

    /// <summary>Classic BPE training: repeatedly merge the most frequent adjacent pair (ties: ordinal order) until the vocabulary is full.</summary>
    private static List<(string Left, string Right)> LearnMerges(SortedDictionary<string, int> words, List<string> vocab, int vocabSize)
    {
        var known = new HashSet<string>(vocab, StringComparer.Ordinal);
        var segmented = words.Select(w => (Symbols: w.Key.Select(c => c.ToString()).ToList(), Count: w.Value)).ToList();
        var merges = new List<(string, string)>();
        while (vocab.Count < vocabSize)
        {
            var pairs = new Dictionary<(string, string), int>();
            foreach (var (symbols, count) in segmented)
                for (var i = 0; i + 1 < symbols.Count; i++)
                    pairs[(symbols[i], symbols[i + 1])] = pairs.GetValueOrDefault((symbols[i], symbols[i + 1])) + count;
            if (pairs.Count == 0) break;
            var best = pairs.OrderByDescending(p => p.Value)
                .ThenBy(p => p.Key.Item1, StringComparer.Ordinal).ThenBy(p => p.Key.Item2, StringComparer.Ordinal).First();
            if (best.Value < 2) break;
            var (left, right) = best.Key;
            merges.Add((left, right));
            if (known.Add(left + right)) vocab.Add(left + right);
            foreach (var (symbols, _) in segmented)
                for (var i = 0; i + 1 < symbols.Count; i++)
                    if (symbols[i] == left && symbols[i + 1] == right)
                    {
                        symbols[i] = left + right;
                        symbols.RemoveAt(i + 1);
                    }
        }
        return merges;
    }

    /// <summary>Every character of the corpus plus its most frequent substrings, each scored by its log relative frequency.</summary>
    private static List<(string Piece, double Score)> UnigramPieces(SortedDictionary<string, int> words, int count)
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (word, n) in words)
            for (var start = 0; start < word.Length; start++)
                for (var len = 1; len <= Math.Min(8, word.Length - start); len++)
                {
                    var piece = word.Substring(start, len);
                    counts[piece] = counts.GetValueOrDefault(piece) + n;
                }
        var singles = counts.Where(c => c.Key.Length == 1).Select(c => c.Key);
        // A piece spelling a special token would shadow it in the vocabulary.
        var longer = counts.Where(c => c.Key.Length > 1 && c.Value >= 2 && c.Key is not ("<s>" or "</s>" or "<pad>" or "<unk>" or "<mask>"))
            .OrderByDescending(c => c.Value * (c.Key.Length - 1)).ThenBy(c => c.Key, StringComparer.Ordinal).Select(c => c.Key);
        var chosen = singles.Concat(longer).Take(count).ToList();
        double total = chosen.Sum(p => counts[p]);
        return [.. chosen.OrderBy(p => p, StringComparer.Ordinal).Select(p => (p, Math.Round(Math.Log(counts[p] / total), 6)))];
    }

    private static string Json(Action<Utf8JsonWriter> body)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = false, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static void AddedToken(Utf8JsonWriter w, int id, string content, bool special, bool lstrip = false)
    {
        w.WriteStartObject();
        w.WriteNumber("id", id);
        w.WriteString("content", content);
        w.WriteBoolean("single_word", false);
        w.WriteBoolean("lstrip", lstrip);
        w.WriteBoolean("rstrip", false);
        w.WriteBoolean("normalized", false);
        w.WriteBoolean("special", special);
        w.WriteEndObject();
    }

    private static void Pattern(Utf8JsonWriter w, string kind, string value)
    {
        w.WriteStartObject("pattern");
        w.WriteString(kind, value);
        w.WriteEndObject();
    }

    private static void Piece(Utf8JsonWriter w, string piece, double score)
    {
        w.WriteStartArray();
        w.WriteStringValue(piece);
        w.WriteNumberValue(score);
        w.WriteEndArray();
    }

    private static void Template(Utf8JsonWriter w, string[] before, string[] after, List<string> vocab)
    {
        w.WriteStartObject("post_processor");
        w.WriteString("type", "TemplateProcessing");
        w.WriteStartArray("single");
        foreach (var s in before) SpecialToken(w, s);
        w.WriteStartObject();
        w.WriteStartObject("Sequence");
        w.WriteString("id", "A");
        w.WriteNumber("type_id", 0);
        w.WriteEndObject();
        w.WriteEndObject();
        foreach (var s in after) SpecialToken(w, s);
        w.WriteEndArray();
        w.WriteStartObject("special_tokens");
        foreach (var s in before.Concat(after).Distinct())
        {
            w.WriteStartObject(s);
            w.WriteString("id", s);
            w.WriteStartArray("ids");
            w.WriteNumberValue(vocab.IndexOf(s));
            w.WriteEndArray();
            w.WriteStartArray("tokens");
            w.WriteStringValue(s);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void SpecialToken(Utf8JsonWriter w, string id)
    {
        w.WriteStartObject();
        w.WriteStartObject("SpecialToken");
        w.WriteString("id", id);
        w.WriteNumber("type_id", 0);
        w.WriteEndObject();
        w.WriteEndObject();
    }
}
