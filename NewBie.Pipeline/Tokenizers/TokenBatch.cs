namespace NewBie.Pipeline.Tokenizers;

/// <summary>One prompt's ids after the tokenizer's template and truncation, and how many text ids truncation cut.</summary>
public sealed record TokenizedText(int[] Ids, int Dropped)
{
    public int Count => Ids.Length;
}

/// <summary>
/// Right-padded ids for a batch of prompts: <see cref="Ids"/> and <see cref="Mask"/> are [rows, length] (mask 1 on real tokens,
/// 0 on padding), <see cref="Lengths"/> the real tokens per row, <see cref="Dropped"/> the ids truncation cut per row.
/// </summary>
public sealed record TokenBatch(long[,] Ids, long[,] Mask, int[] Lengths, int[] Dropped)
{
    public int Rows => Ids.GetLength(0);
    public int Length => Ids.GetLength(1);

    /// <summary>Pads every row with <paramref name="padId"/> to the longest row, rounded up to a multiple of <paramref name="multipleOf"/>.</summary>
    public static TokenBatch Pad(IReadOnlyList<TokenizedText> rows, int padId, int multipleOf = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(multipleOf, 1);
        var longest = rows.Count == 0 ? 0 : rows.Max(r => r.Count);
        var length = (longest + multipleOf - 1) / multipleOf * multipleOf;
        var ids = new long[rows.Count, length];
        var mask = new long[rows.Count, length];
        for (var r = 0; r < rows.Count; r++)
            for (var i = 0; i < length; i++)
            {
                var real = i < rows[r].Count;
                ids[r, i] = real ? rows[r].Ids[i] : padId;
                mask[r, i] = real ? 1 : 0;
            }
        return new TokenBatch(ids, mask, [.. rows.Select(r => r.Count)], [.. rows.Select(r => r.Dropped)]);
    }
}
