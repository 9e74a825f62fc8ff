namespace NewBie.Pipeline.Tests;

/// <summary>
/// Locates the parity fixtures: <c>$NEWBIE_FIXTURES</c>, or <c>../shared/fixtures</c> beside the repository
/// (design.md §9). A fixture kind is its folder name. Kinds that are absent are skipped by the data-driven tests,
/// unless <c>NEWBIE_REQUIRE_FIXTURES=1</c> (as <c>.ci/run</c> sets): then every test of an absent kind fails.
/// </summary>
public static class Fixtures
{
    /// <summary>Every kind the parity tests know (design.md §9).</summary>
    public static readonly string[] AllKinds = ["tokenizers", "tokenizers-xlmr", "gemma3", "jina", "nextdit", "sampler", "vae"];

    public static string Root { get; } = Locate();

    /// <summary>True when absent kinds must fail instead of being skipped.</summary>
    public static bool Required { get; } = Environment.GetEnvironmentVariable("NEWBIE_REQUIRE_FIXTURES") == "1";

    private static string Locate()
    {
        var env = Environment.GetEnvironmentVariable("NEWBIE_FIXTURES");
        if (!string.IsNullOrWhiteSpace(env)) return Path.GetFullPath(env);
        return Path.GetFullPath(Path.Combine(FindRepositoryRoot(), "..", "shared", "fixtures"));
    }

    /// <summary>
    /// The folder holding NewBie.slnx, found by walking up from the test assembly. Looked up on first use only: the
    /// GPU check (bench/gpu) runs these tests from a published folder outside any repository, with NEWBIE_FIXTURES set.
    /// </summary>
    public static string RepositoryRoot => LazyRepositoryRoot.Value;

    private static readonly Lazy<string> LazyRepositoryRoot = new(FindRepositoryRoot);

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "NewBie.slnx"))) return dir.FullName;
        throw new InvalidOperationException("NewBie.slnx not found above " + AppContext.BaseDirectory);
    }

    /// <summary>
    /// The folder of one fixture kind; null when the fixture set does not contain it (the tests skip). When fixtures
    /// are required the expected path is returned even if absent, so the test runs and fails reading it.
    /// </summary>
    public static string? Kind(string kind)
    {
        var dir = Path.Combine(Root, kind);
        return Directory.Exists(dir) || Required ? dir : null;
    }

    /// <summary>xunit member data: one row per present fixture folder of the kind (none when absent).</summary>
    public static TheoryData<string> Folders(string kind)
    {
        var data = new TheoryData<string>();
        if (Kind(kind) is { } dir) data.Add(dir);
        return data;
    }
}
