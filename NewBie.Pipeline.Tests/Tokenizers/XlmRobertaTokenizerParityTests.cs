using NewBie.Pipeline.Tokenizers;
using static NewBie.Pipeline.Tests.Tokenizers.TokenizerFixtures;

namespace NewBie.Pipeline.Tests.Tokenizers;

[Trait("Category", "Parity")]
public sealed class XlmRobertaTokenizerParityTests
{
    public static TheoryData<string> Folders => Fixtures.Folders("tokenizers-xlmr");

    /// <summary>The three published tokenizer.json layouts, each with the id list its pipeline gives.</summary>
    [FixtureTheory("tokenizers-xlmr"), MemberData(nameof(Folders))]
    public void Every_case_encodes_to_the_reference_ids_with_the_v2_layout(string folder) => AllCasesMatch(folder, "tokenizer.json.gz", "ids");

    [FixtureTheory("tokenizers-xlmr"), MemberData(nameof(Folders))]
    public void Every_case_encodes_to_the_v1_ids_with_the_v1_layout(string folder) => AllCasesMatch(folder, "tokenizer.v1.json.gz", "ids_tokenizer_v1");

    [FixtureTheory("tokenizers-xlmr"), MemberData(nameof(Folders))]
    public void Every_case_encodes_to_the_v3_ids_with_the_v3_layout(string folder) => AllCasesMatch(folder, "tokenizer.v3.json.gz", "ids_tokenizer_v3");

    private static void AllCasesMatch(string folder, string file, string idsKey)
    {
        var tokenizer = Xlmr(folder, file);
        var failures = new List<string>();
        var count = 0;
        foreach (var c in Cases(folder).GetProperty("cases").EnumerateArray())
        {
            count++;
            var diff = Diff(Ints(c.GetProperty(idsKey)), tokenizer.EncodeUntruncated(c.GetProperty("text").GetString()!));
            if (diff != "") failures.Add($"{c.GetProperty("name").GetString()}: {diff}");
        }
        Assert.True(count > 0, "cases.json has no cases");
        Assert.True(failures.Count == 0, $"{failures.Count} of {count} cases differ:\n" + string.Join("\n", failures));
    }

    [FixtureTheory("tokenizers-xlmr"), MemberData(nameof(Folders))]
    public void Every_case_truncates_to_the_limit_keeping_the_closing_s(string folder)
    {
        var tokenizer = Xlmr(folder);
        var failures = new List<string>();
        var truncatedCases = 0;
        foreach (var c in Cases(folder).GetProperty("cases").EnumerateArray())
        {
            var name = c.GetProperty("name").GetString();
            var ids = Ints(c.GetProperty("ids"));
            var expected = ids;
            if (c.TryGetProperty("ids_truncated_2048", out var t) && t.ValueKind == System.Text.Json.JsonValueKind.Array)
            {
                expected = Ints(t);
                truncatedCases++;
            }
            var encoded = tokenizer.Encode(c.GetProperty("text").GetString()!);
            var diff = Diff(expected, encoded.Ids);
            if (diff != "") failures.Add($"{name}: {diff}");
            if (encoded.Dropped != ids.Length - expected.Length) failures.Add($"{name}: dropped {encoded.Dropped}, expected {ids.Length - expected.Length}");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        if (truncatedCases == 0) LongTextBuiltFromTheCasesKeepsTheFirstIdsAndTheClosingS(folder, tokenizer);
    }

    /// <summary>
    /// For a fixture set without a case over the limit: the cases joined until the untruncated ids pass it (those ids
    /// are checked case by case above); truncation keeps the first max−1 and the closing &lt;/s&gt;.
    /// </summary>
    private static void LongTextBuiltFromTheCasesKeepsTheFirstIdsAndTheClosingS(string folder, XlmRobertaTokenizer tokenizer)
    {
        var texts = Cases(folder).GetProperty("cases").EnumerateArray().Select(c => c.GetProperty("text").GetString()!).Where(t => t.Length > 0).ToList();
        var text = "";
        for (var i = 0; tokenizer.EncodeUntruncated(text).Length <= tokenizer.MaxLength; i++) text += texts[i % texts.Count] + " ";
        var full = tokenizer.EncodeUntruncated(text);
        var encoded = tokenizer.Encode(text);
        Assert.Equal([.. full[..(tokenizer.MaxLength - 1)], full[^1]], encoded.Ids);
        Assert.Equal(full.Length - tokenizer.MaxLength, encoded.Dropped);
    }

    [FixtureTheory("tokenizers-xlmr"), MemberData(nameof(Folders))]
    public void Batch_example_is_right_padded_with_pad_to_the_longest_row(string folder)
    {
        var cases = Cases(folder);
        var example = cases.GetProperty("batch_example");
        var texts = example.GetProperty("names").EnumerateArray().Select(n => Case(cases, n.GetString()!).GetProperty("text").GetString()!).ToArray();
        var expectedIds = example.GetProperty("input_ids").EnumerateArray().Select(Ints).ToArray();
        var expectedMask = example.GetProperty("attention_mask").EnumerateArray().Select(Ints).ToArray();

        var batch = Xlmr(folder).EncodeBatch(texts);

        Assert.Equal(expectedIds.Length, batch.Rows);
        Assert.Equal(expectedIds[0].Length, batch.Length);
        for (var r = 0; r < batch.Rows; r++)
            for (var i = 0; i < batch.Length; i++)
            {
                Assert.True(expectedIds[r][i] == batch.Ids[r, i], $"row {r} position {i}: id {batch.Ids[r, i]}, expected {expectedIds[r][i]}");
                Assert.True(expectedMask[r][i] == batch.Mask[r, i], $"row {r} position {i}: mask {batch.Mask[r, i]}, expected {expectedMask[r][i]}");
            }
    }

    [FixtureTheory("tokenizers-xlmr"), MemberData(nameof(Folders))]
    public void Empty_text_is_s_and_closing_s(string folder)
    {
        var tokenizer = Xlmr(folder);
        var conventions = Cases(folder).GetProperty("conventions");
        // Every reference id list is <s> … </s>.
        var ids = Ints(Cases(folder).GetProperty("cases")[0].GetProperty("ids"));
        Assert.Equal([ids[0], ids[^1]], tokenizer.Encode("").Ids);
        Assert.Equal(conventions.GetProperty("padding_id").GetInt32(), tokenizer.PadId);
        Assert.Equal(conventions.GetProperty("vocab_size").GetInt32(), tokenizer.VocabSize);
    }
}
