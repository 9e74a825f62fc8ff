using System.Text;
using System.Text.Json;
using NewBie.Pipeline.Tokenizers;

namespace NewBie.Pipeline.Tests.Tokenizers;

public sealed class TinyTokenizersTests : IDisposable
{
    private const string XmlPrompt = """
        <character_1>
          <n>$character_1$</n>
          <gender>1girl</gender>
          <appearance>long_hair, blue_eyes, smile</appearance>
        </character_1>

        <general_tags>
          <style>anime_style, digital_art</style>
          <quality>masterpiece, best_quality</quality>
        </general_tags>
        """;

    private const string CjkPrompt = "一个长着银色长发的女孩站在樱花树下，微笑着看向观众。桜の木の下に立つ少女。벚꽃 나무 🌸";

    private readonly string _dir = Directory.CreateTempSubdirectory("newbie-tok-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private (GemmaTokenizer Gemma, XlmRobertaTokenizer Jina) WriteAndLoad()
    {
        var gemmaDir = Path.Combine(_dir, "gemma");
        var jinaDir = Path.Combine(_dir, "jina");
        TinyTokenizers.Write(gemmaDir, jinaDir);
        return (GemmaTokenizer.FromFile(Path.Combine(gemmaDir, TinyTokenizers.FileName)),
                XlmRobertaTokenizer.FromFile(Path.Combine(jinaDir, TinyTokenizers.FileName)));
    }

    [Fact]
    public void Written_files_load_with_at_most_512_ids_each()
    {
        var (gemma, jina) = WriteAndLoad();
        Assert.Equal(TinyTokenizers.VocabSize, gemma.VocabSize);
        Assert.True(jina.VocabSize <= TinyTokenizers.VocabSize, $"jina has {jina.VocabSize} ids");
        Assert.Equal(0, gemma.PadId);
        Assert.Equal(2, gemma.BosId);
        Assert.Equal(1, jina.PadId);
    }

    [Fact]
    public void Written_into_a_model_folder_they_sit_where_the_folder_expects_its_tokenizers()
    {
        var folder = new ModelFolder(_dir);
        TinyTokenizers.Write(folder);
        Assert.Equal(TinyTokenizers.GemmaJson(), File.ReadAllText(folder.GemmaTokenizer));
        Assert.Equal(TinyTokenizers.JinaJson(), File.ReadAllText(folder.JinaTokenizer));
    }

    [Fact]
    public void Generation_is_deterministic()
    {
        Assert.Equal(TinyTokenizers.GemmaJson(), TinyTokenizers.BuildGemmaJson());
        Assert.Equal(TinyTokenizers.JinaJson(), TinyTokenizers.BuildJinaJson());
    }

    [Fact]
    public void Gemma_file_is_a_byte_fallback_bpe_with_a_few_hundred_merges()
    {
        using var doc = JsonDocument.Parse(TinyTokenizers.GemmaJson());
        var model = doc.RootElement.GetProperty("model");
        Assert.Equal("BPE", model.GetProperty("type").GetString());
        Assert.True(model.GetProperty("byte_fallback").GetBoolean());
        Assert.InRange(model.GetProperty("merges").GetArrayLength(), 150, 500);
        Assert.Equal(256, model.GetProperty("vocab").EnumerateObject().Count(p => p.Name.StartsWith("<0x", StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData(XmlPrompt)]
    [InlineData(CjkPrompt)]
    [InlineData("1girl, solo, long_hair, blue_eyes, smile, school_uniform, outdoors, cherry_blossoms")]
    public void Typical_prompts_encode_to_ids_inside_the_vocabulary(string prompt)
    {
        var (gemma, jina) = WriteAndLoad();
        var g = gemma.Encode(PromptTemplate.Apply(prompt, PromptTemplate.Auto).GemmaText);
        var j = jina.Encode(prompt);
        Assert.Equal(2, g.Ids[0]);
        Assert.True(g.Count > 5);
        Assert.All(g.Ids, id => Assert.InRange(id, 0, gemma.VocabSize - 1));
        Assert.Equal(0, j.Ids[0]);
        Assert.Equal(2, j.Ids[^1]);
        Assert.True(j.Count > 3);
        Assert.All(j.Ids, id => Assert.InRange(id, 0, jina.VocabSize - 1));
    }

    [Fact]
    public void Gemma_spells_characters_outside_the_vocabulary_as_utf8_bytes()
    {
        var (gemma, _) = WriteAndLoad();
        var ids = gemma.EncodeUntruncated("桜");
        int Byte(int b) => gemma.TokenId($"<0x{b:X2}>")!.Value;
        // <bos>, then E6 A1 9C as byte tokens.
        Assert.Equal(new[] { 2, Byte(0xE6), Byte(0xA1), Byte(0x9C) }, ids);
    }

    [Fact]
    public void Gemma_merges_frequent_corpus_words_and_keeps_added_tokens_whole()
    {
        var (gemma, _) = WriteAndLoad();
        // 21 characters; merges learned from the corpus join most of them.
        Assert.True(gemma.EncodeUntruncated("a girl with long hair").Length - 1 <= 10);
        var ids = gemma.EncodeUntruncated("a\n\nb");
        Assert.Equal(4, ids.Length);
    }

    [Fact]
    public void Jina_charsmap_folds_fullwidth_letters_and_odd_spaces()
    {
        var (_, jina) = WriteAndLoad();
        Assert.Equal(jina.EncodeUntruncated("smile girl"), jina.EncodeUntruncated("ｓｍｉｌｅ\u3000girl"));
        Assert.Equal(jina.EncodeUntruncated("smile girl"), jina.EncodeUntruncated("smile\t\u0007girl"));
    }

    [Fact]
    public void Jina_folds_a_run_of_unknown_characters_into_one_unk()
    {
        var (_, jina) = WriteAndLoad();
        var ids = jina.EncodeUntruncated("桜桜桜");
        Assert.Equal(4, ids.Length);
        Assert.Equal(3, ids[2]);
        Assert.Equal(jina.TokenId("\u2581"), ids[1]);
    }

    [Fact]
    public void Written_file_is_utf8_without_bom()
    {
        var gemmaDir = Path.Combine(_dir, "g");
        TinyTokenizers.Write(gemmaDir, Path.Combine(_dir, "j"));
        var bytes = File.ReadAllBytes(Path.Combine(gemmaDir, TinyTokenizers.FileName));
        Assert.Equal((byte)'{', bytes[0]);
        Assert.Equal(TinyTokenizers.GemmaJson(), Encoding.UTF8.GetString(bytes));
    }
}
