using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using NewBie.Pipeline.Tokenizers;

namespace NewBie.Pipeline.Tests.Tokenizers;

/// <summary>Behaviours of the tokenizer.json pipeline that the fixtures' large vocabularies hide, on hand-made files.</summary>
public sealed class TokenizerPipelineTests
{
    private static HfTokenizer Load(JsonObject json) => HfTokenizer.Load(new MemoryStream(Encoding.UTF8.GetBytes(json.ToJsonString())));

    private static JsonObject Bpe(string[] tokens, (string, string)[] merges, bool byteFallback = false, JsonArray? added = null)
    {
        var vocab = new JsonObject { ["<unk>"] = 0 };
        foreach (var t in tokens) vocab[t] = vocab.Count;
        if (byteFallback)
            for (var b = 0; b < 256; b++) vocab[$"<0x{b:X2}>"] = vocab.Count;
        return new JsonObject
        {
            ["added_tokens"] = added ?? [],
            ["normalizer"] = null,
            ["pre_tokenizer"] = null,
            ["post_processor"] = null,
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["unk_token"] = "<unk>",
                ["fuse_unk"] = true,
                ["byte_fallback"] = byteFallback,
                ["vocab"] = vocab,
                ["merges"] = new JsonArray([.. merges.Select(m => (JsonNode)new JsonArray(m.Item1, m.Item2))]),
            },
        };
    }

    private static JsonObject Added(int id, string content, bool lstrip = false, bool rstrip = false, bool singleWord = false) => new()
    {
        ["id"] = id, ["content"] = content, ["single_word"] = singleWord, ["lstrip"] = lstrip, ["rstrip"] = rstrip,
        ["normalized"] = false, ["special"] = true,
    };

    private static string[] Pieces(HfTokenizer tokenizer, JsonObject json, string text)
    {
        var names = json["model"]!["vocab"]!.AsObject().ToDictionary(p => (int)p.Value!, p => p.Key);
        foreach (var a in json["added_tokens"]!.AsArray()) names[(int)a!["id"]!] = (string)a["content"]!;
        return [.. tokenizer.EncodeText(text).Select(id => names[id])];
    }

    [Fact]
    public void Bpe_merges_equal_pairs_leftmost_first()
    {
        var json = Bpe(["x", "xx"], [("x", "x")]);
        var tokenizer = Load(json);
        Assert.Equal(["xx", "x"], Pieces(tokenizer, json, "xxx"));
        Assert.Equal(["xx", "xx", "x"], Pieces(tokenizer, json, "xxxxx"));
    }

    [Fact]
    public void Bpe_applies_merges_by_rank_not_by_position()
    {
        // "bc" outranks "ab": abc -> a + bc, although ab comes first in the text.
        var json = Bpe(["a", "b", "c", "ab", "bc"], [("b", "c"), ("a", "b")]);
        Assert.Equal(["a", "bc"], Pieces(Load(json), json, "abc"));
    }

    [Fact]
    public void Bpe_byte_fallback_spells_an_unknown_character_as_its_utf8_bytes()
    {
        var json = Bpe(["a"], [], byteFallback: true);
        Assert.Equal(["a", "<0xC3>", "<0xA9>", "a"], Pieces(Load(json), json, "aéa"));
    }

    [Fact]
    public void Bpe_without_byte_fallback_fuses_a_run_of_unknown_characters_into_one_unk()
    {
        var json = Bpe(["a"], []);
        Assert.Equal(["a", "<unk>", "a", "<unk>"], Pieces(Load(json), json, "aéèaü"));
    }

    [Fact]
    public void Added_tokens_match_longest_first_and_lstrip_swallows_the_spaces_before()
    {
        var json = Bpe(["a", " ", "\n"], [], added: [Added(10, "\n"), Added(11, "\n\n"), Added(12, "<m>", lstrip: true)]);
        var tokenizer = Load(json);
        Assert.Equal(["a", "\n\n", "\n", "a"], Pieces(tokenizer, json, "a\n\n\na"));
        Assert.Equal(["a", "<m>", " ", "a"], Pieces(tokenizer, json, "a  <m> a"));
    }

    [Fact]
    public void Added_token_with_rstrip_swallows_the_spaces_after_and_single_word_refuses_a_match_inside_a_word()
    {
        var json = Bpe(["a", " ", "b"], [], added: [Added(10, "<r>", rstrip: true), Added(11, "b", singleWord: true)]);
        var tokenizer = Load(json);
        Assert.Equal(["a", "<r>", "a"], Pieces(tokenizer, json, "a<r>  a"));
        // A lone b is the added token (id 11); inside "aba" it stays the model's own b.
        Assert.Equal([0 + 11], tokenizer.EncodeText("b"));
        Assert.DoesNotContain(11, tokenizer.EncodeText("aba"));
    }

    [Fact]
    public void Charsmap_uses_the_shortest_rule_matching_a_prefix()
    {
        var charsmap = PrecompiledCharsmap.Parse(DoubleArrayTrie.BuildCharsmap(new Dictionary<string, string> { ["a"] = "A", ["ab"] = "X", ["c"] = "" }));
        Assert.Equal("A", charsmap.Transform("ab"u8));
        Assert.Null(charsmap.Transform("b"u8));
        Assert.Equal("", charsmap.Transform("c"u8));
    }

    [Fact]
    public void Charsmap_replaces_a_short_grapheme_cluster_whole_and_a_long_one_per_code_point()
    {
        var charsmap = PrecompiledCharsmap.Parse(DoubleArrayTrie.BuildCharsmap(new Dictionary<string, string> { ["e"] = "E", ["ｶ"] = "カ" }));
        // e + combining acute is one 3-byte cluster: the rule for "e" replaces all of it, the mark is lost.
        Assert.Equal("E E", charsmap.Normalize("e\u0301 e"));
        // ｶ + U+0301 + U+0301 is a 7-byte cluster: mapped code point by code point, the marks are kept.
        Assert.Equal("カ\u0301\u0301", charsmap.Normalize("ｶ\u0301\u0301"));
        Assert.Equal("xyz", charsmap.Normalize("xyz"));
    }

    [Fact]
    public void Metaspace_prepends_to_every_segment_between_added_tokens_or_only_the_first()
    {
        JsonObject Json(string scheme)
        {
            var json = Bpe(["\u2581a", "\u2581", "a"], [], added: [Added(10, "<x>")]);
            json["pre_tokenizer"] = new JsonObject { ["type"] = "Metaspace", ["replacement"] = "\u2581", ["prepend_scheme"] = scheme, ["split"] = true };
            json["model"]!["merges"] = new JsonArray(new JsonArray("\u2581", "a"));
            return json;
        }
        var always = Json("always");
        Assert.Equal(["\u2581a", "<x>", "\u2581a"], Pieces(Load(always), always, "a<x>a"));
        var first = Json("first");
        Assert.Equal(["\u2581a", "<x>", "a"], Pieces(Load(first), first, "a<x>a"));
    }

    [Theory]
    [InlineData("Removed", "the|final|countdown")]
    [InlineData("Isolated", "the|-|final|-|-|countdown")]
    [InlineData("MergedWithPrevious", "the-|final-|-|countdown")]
    [InlineData("MergedWithNext", "the|-final|-|-countdown")]
    [InlineData("Contiguous", "the|-|final|--|countdown")]
    public void Split_pre_tokenizer_groups_delimiters_as_its_behavior_says(string behavior, string expected)
    {
        // The examples of Hugging Face's SplitDelimiterBehavior documentation.
        using var doc = JsonDocument.Parse($$"""{"type":"Split","pattern":{"String":"-"},"behavior":"{{behavior}}","invert":false}""");
        var output = new List<TextSplit>();
        PreTokenizers.FromJson(doc.RootElement)!.Split(new TextSplit("the-final--countdown", true), output);
        Assert.Equal(expected, string.Join("|", output.Select(s => s.Text)));
    }

    [Fact]
    public void Unsupported_pipeline_steps_are_refused_by_name()
    {
        var json = Bpe(["a"], []);
        json["normalizer"] = new JsonObject { ["type"] = "BertNormalizer" };
        var e = Assert.Throws<NotSupportedException>(() => Load(json));
        Assert.Contains("BertNormalizer", e.Message);
    }

    [Fact]
    public void A_merge_whose_result_is_missing_from_the_vocabulary_is_rejected()
    {
        var json = Bpe(["a", "b"], [("a", "b")]);
        var e = Assert.Throws<InvalidDataException>(() => Load(json));
        Assert.Contains("'ab'", e.Message);
    }

    [Fact]
    public void Truncation_keeps_the_template_tokens_and_counts_the_cut_ids()
    {
        var json = Bpe(["a", "<s>", "</s>"], []);
        json["post_processor"] = JsonNode.Parse("""
            {"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>","type_id":0}},{"Sequence":{"id":"A","type_id":0}},{"SpecialToken":{"id":"</s>","type_id":0}}],
             "special_tokens":{"<s>":{"id":"<s>","ids":[2],"tokens":["<s>"]},"</s>":{"id":"</s>","ids":[3],"tokens":["</s>"]}}}
            """);
        var tokenizer = Load(json);
        var (ids, dropped) = tokenizer.Encode("aaaaa", maxLength: 4);
        Assert.Equal([2, 1, 1, 3], ids);
        Assert.Equal(3, dropped);
        Assert.Equal([2, 3], tokenizer.Encode("").Ids);
        Assert.Equal(0, tokenizer.Encode("").Dropped);
    }
}
