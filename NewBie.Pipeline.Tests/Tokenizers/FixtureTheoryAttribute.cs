namespace NewBie.Pipeline.Tests.Tokenizers;

/// <summary>
/// A theory over fixture folders that is reported as skipped when a fixture kind it needs is absent: xunit 2 fails a
/// theory whose member data has no rows ("No data found"), which would turn a missing fixture set into failures.
/// </summary>
public sealed class FixtureTheoryAttribute : TheoryAttribute
{
    public FixtureTheoryAttribute(params string[] kinds)
    {
        var missing = kinds.Where(k => Fixtures.Kind(k) is null).ToArray();
        if (missing.Length > 0) Skip = $"fixture {string.Join(", ", missing)} absent under {Fixtures.Root}";
    }
}
