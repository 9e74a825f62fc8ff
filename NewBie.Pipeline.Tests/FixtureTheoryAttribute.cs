namespace NewBie.Pipeline.Tests;

/// <summary>
/// A parity theory over one fixture kind that is reported as skipped when the kind is absent. xunit 2 fails a
/// theory whose member data yields no rows ("No data found"), so <see cref="Fixtures.Folders"/> alone cannot
/// make an absent kind a skip (design.md §9: absent kinds are skipped, present kinds must pass).
/// </summary>
public sealed class FixtureTheoryAttribute : TheoryAttribute
{
    public FixtureTheoryAttribute(string kind)
    {
        if (Fixtures.Kind(kind) is null) Skip = $"fixture kind '{kind}' is not in {Fixtures.Root}";
    }
}
