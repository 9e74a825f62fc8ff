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
            var expectedDropped = Math.Max(0, c.GetProperty("gemma_len").GetInt32() - tokenizer.MaxLength);
            if (encoded.Dropped != expectedDropped) failures.Add($"{name}: dropped {encoded.Dropped}, expected {expectedDropped}");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    /// <summary>Where the fixture holds a prompt and the same prompt behind the XML system prompt, "auto" builds exactly that text.</summary>
    [FixtureTheory("tokenizers"), MemberData(nameof(Folders))]
    public void A_case_behind_the_xml_system_prompt_is_what_auto_builds_for_the_bare_case(string folder)
    {
        var cases = Cases(folder).GetProperty("cases").EnumerateArray().ToList();
        var texts = cases.Select(c => c.GetProperty("text").GetString()!).ToHashSet(StringComparer.Ordinal);
        foreach (var templated in texts.Where(t => t.StartsWith(PromptTemplate.XmlSystemPrompt, StringComparison.Ordinal)))
        {
            var bare = templated[PromptTemplate.XmlSystemPrompt.Length..];
            if (texts.Contains(bare)) Assert.Equal(templated, PromptTemplate.Apply(bare, PromptTemplate.Auto).GemmaText);
        }
    }

    [FixtureTheory("tokenizers"), MemberData(nameof(Folders))]
    public void Empty_text_is_bos_alone(string folder)
    {
        var tokenizer = Gemma(folder);
        // Every reference id list starts with <bos>.
        var bos = Ints(Cases(folder).GetProperty("cases")[0].GetProperty("gemma_ids"))[0];
        var encoded = tokenizer.Encode("");
        Assert.Equal([bos], encoded.Ids);
        Assert.Equal(bos, tokenizer.BosId);
        Assert.Equal(0, encoded.Dropped);
    }

    /// <summary>The fixture's cases as one batch: each row its truncated reference ids, right-padded to a multiple of 8.</summary>
    [FixtureTheory("tokenizers"), MemberData(nameof(Folders))]
    public void Batch_is_right_padded_with_pad_to_a_multiple_of_8_with_a_mask(string folder)
    {
        var tokenizer = Gemma(folder);
        var cases = Cases(folder).GetProperty("cases").EnumerateArray().ToList();
        var texts = cases.Select(c => c.GetProperty("text").GetString()!).ToArray();
        var expected = cases.Select(c => Ints(c.GetProperty("gemma_ids_truncated_512"))).ToArray();
        var fullLengths = cases.Select(c => c.GetProperty("gemma_len").GetInt32()).ToArray();

        var batch = tokenizer.EncodeBatch(texts);

        var longest = expected.Max(e => e.Length);
        Assert.Equal((longest + GemmaTokenizer.PadMultiple - 1) / GemmaTokenizer.PadMultiple * GemmaTokenizer.PadMultiple, batch.Length);
        Assert.Equal(expected.Select(e => e.Length), batch.Lengths);
        Assert.Equal(fullLengths.Select((n, i) => n - expected[i].Length), batch.Dropped);
        for (var r = 0; r < texts.Length; r++)
            for (var i = 0; i < batch.Length; i++)
            {
                Assert.Equal(i < expected[r].Length ? expected[r][i] : tokenizer.PadId, batch.Ids[r, i]);
                Assert.Equal(i < expected[r].Length ? 1 : 0, batch.Mask[r, i]);
            }
    }
}
