namespace NewBie.Pipeline.Tests;

/// <summary>
/// A parity theory over fixture kinds that is reported as skipped when a kind it needs is absent. xunit 2 fails a
/// theory whose member data yields no rows ("No data found"), so <see cref="Fixtures.Folders"/> alone cannot
/// make an absent kind a skip (design.md §9: absent kinds are skipped, present kinds must pass).
/// </summary>
public sealed class FixtureTheoryAttribute : TheoryAttribute
{
    public FixtureTheoryAttribute(params string[] kinds)
    {
        var missing = kinds.Where(k => Fixtures.Kind(k) is null).ToArray();
        if (missing.Length > 0) Skip = $"fixture kind {string.Join(", ", missing)} is not in {Fixtures.Root}";
    }
}
