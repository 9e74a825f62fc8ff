using System.Collections.Concurrent;
using System.Text.Json;
using NewBie.Pipeline.Tokenizers;

namespace NewBie.Pipeline.Tests.Tokenizers;

/// <summary>Loads each fixture tokenizer once per test run (the Gemma file is 33 MB) and reads cases.json.</summary>
internal static class TokenizerFixtures
{
    private static readonly ConcurrentDictionary<string, Lazy<GemmaTokenizer>> Gemmas = new();
    private static readonly ConcurrentDictionary<string, Lazy<XlmRobertaTokenizer>> Xlmrs = new();

    public static GemmaTokenizer Gemma(string folder) =>
        Gemmas.GetOrAdd(Path.Combine(folder, "gemma3_tokenizer.json.gz"), p => new(() => GemmaTokenizer.FromFile(p))).Value;

    /// <summary><paramref name="file"/>: tokenizer.json.gz (v2, the reference), tokenizer.v1.json.gz or tokenizer.v3.json.gz.</summary>
    public static XlmRobertaTokenizer Xlmr(string folder, string file = "tokenizer.json.gz") =>
        Xlmrs.GetOrAdd(Path.Combine(folder, file), p => new(() => XlmRobertaTokenizer.FromFile(p))).Value;

    public static JsonElement Cases(string folder)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(folder, "cases.json")));
        return doc.RootElement.Clone();
    }

    public static JsonElement Case(JsonElement cases, string name) =>
        cases.GetProperty("cases").EnumerateArray().Single(c => c.GetProperty("name").GetString() == name);

    public static int[] Ints(JsonElement array) => [.. array.EnumerateArray().Select(e => e.GetInt32())];

    /// <summary>"" when equal, else where and how the two id lists first differ.</summary>
    public static string Diff(int[] expected, int[] actual)
    {
        if (expected.AsSpan().SequenceEqual(actual)) return "";
        var i = 0;
        while (i < expected.Length && i < actual.Length && expected[i] == actual[i]) i++;
        string Around(int[] ids) => string.Join(",", ids.Skip(Math.Max(0, i - 2)).Take(6));
        return $"lengths {expected.Length} vs {actual.Length}, first difference at {i}: expected …{Around(expected)}… got …{Around(actual)}…";
    }
}
