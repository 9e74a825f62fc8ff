using NewBie.Pipeline.Tokenizers;
using static NewBie.Pipeline.Tests.Tokenizers.TokenizerFixtures;

namespace NewBie.Pipeline.Tests.Tokenizers;

[Trait("Category", "Parity")]
public sealed class GemmaTokenizerParityTests
{
    public static TheoryData<string> Folders => Fixtures.Folders("tokenizers");

    [FixtureTheory("tokenizers"), MemberData(nameof(Folders))]
    public void Every_case_encodes_to_the_reference_ids(string folder)
    {
        var tokenizer = Gemma(folder);
        var failures = new List<string>();
        foreach (var c in Cases(folder).GetProperty("cases").EnumerateArray())
        {
            var diff = Diff(Ints(c.GetProperty("gemma_ids")), tokenizer.EncodeUntruncated(c.GetProperty("text").GetString()!));
            if (diff != "") failures.Add($"{c.GetProperty("name").GetString()}: {diff}");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [FixtureTheory("tokenizers"), MemberData(nameof(Folders))]
    public void Every_case_truncates_to_512_ids_keeping_bos_and_counts_what_was_cut(string folder)
    {
        var tokenizer = Gemma(folder);
        var failures = new List<string>();
        foreach (var c in Cases(folder).GetProperty("cases").EnumerateArray())
        {
            var name = c.GetProperty("name").GetString();
            var encoded = tokenizer.Encode(c.GetProperty("text").GetString()!);
            var diff = Diff(Ints(c.GetProperty("gemma_ids_truncated_512")), encoded.Ids);
            if (diff != "") failures.Add($"{name}: {diff}");
            var expectedDropped = Math.Max(0, c.GetProperty("gemma_len").GetInt32() - 512);
            if (encoded.Dropped != expectedDropped) failures.Add($"{name}: dropped {encoded.Dropped}, expected {expectedDropped}");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [FixtureTheory("tokenizers"), MemberData(nameof(Folders))]
    public void Official_xml_example_with_the_xml_system_prompt_loses_its_last_23_tokens(string folder)
    {
        var cases = Cases(folder);
        var xml = Case(cases, "xml_example").GetProperty("text").GetString()!;
        var templated = Case(cases, "xml_example_with_xml_system_prompt");
        // The fixture's string is exactly what the template builds for this prompt under "auto".
        Assert.Equal(templated.GetProperty("text").GetString(), PromptTemplate.Apply(xml, PromptTemplate.Auto).GemmaText);

        var tokenizer = Gemma(folder);
        var full = tokenizer.EncodeUntruncated(PromptTemplate.XmlSystemPrompt + xml);
        Assert.Equal(templated.GetProperty("gemma_len").GetInt32(), full.Length);
        Assert.Equal(535, full.Length);

        var kept = tokenizer.Encode(PromptTemplate.XmlSystemPrompt + xml);
        Assert.Equal(512, kept.Count);
        Assert.Equal(23, kept.Dropped);
        Assert.Equal(full[..512], kept.Ids);
    }

    [FixtureTheory("tokenizers"), MemberData(nameof(Folders))]
    public void Empty_text_is_bos_alone(string folder)
    {
        var encoded = Gemma(folder).Encode("");
        Assert.Equal([2], encoded.Ids);
        Assert.Equal(0, encoded.Dropped);
    }

    [FixtureTheory("tokenizers"), MemberData(nameof(Folders))]
    public void Batch_is_right_padded_with_pad_to_a_multiple_of_8_with_a_mask(string folder)
    {
        var tokenizer = Gemma(folder);
        var cases = Cases(folder);
        string[] names = ["danbooru_tags", "empty", "long_prompt"];
        var texts = names.Select(n => Case(cases, n).GetProperty("text").GetString()!).ToArray();

        var batch = tokenizer.EncodeBatch(texts);

        Assert.Equal(512, batch.Length);
        Assert.Equal([33, 1, 512], batch.Lengths);
        Assert.Equal([0, 0, 2199 - 512], batch.Dropped);
        var tags = Ints(Case(cases, "danbooru_tags").GetProperty("gemma_ids"));
        for (var i = 0; i < batch.Length; i++)
        {
            Assert.Equal(i < tags.Length ? tags[i] : 0, batch.Ids[0, i]);
            Assert.Equal(i < tags.Length ? 1 : 0, batch.Mask[0, i]);
            Assert.Equal(i == 0 ? 2 : 0, batch.Ids[1, i]);
            Assert.Equal(i == 0 ? 1 : 0, batch.Mask[1, i]);
            Assert.Equal(1, batch.Mask[2, i]);
        }

        var small = tokenizer.EncodeBatch([texts[0], texts[1]]);
        Assert.Equal(40, small.Length);
    }
}
