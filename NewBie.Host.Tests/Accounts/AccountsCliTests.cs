using System.Net;
using NewBie.Host.Accounts;

namespace NewBie.Host.Tests.Accounts;

public sealed class AccountsCliTests : IDisposable
{
    private readonly NewBieApplication _app = new();

    public void Dispose() => _app.Dispose();

    [Fact]
    public async Task Users_add_and_keys_create_on_a_stopped_server_print_a_key_the_server_then_accepts()
    {
        var (addCode, _, _) = Run("users", "add", "alice", "--admin", "--password", "correct horse", "--data-dir", _app.DataDir);
        var (keyCode, output, _) = Run("keys", "create", "alice", "--name", "ci", "--data-dir", _app.DataDir);
        var key = output.TrimEnd().Split('\n')[^1];

        using var response = await _app.ClientWithBearer(key).GetAsync("/v1/admin/users");

        Assert.Equal((0, 0), (addCode, keyCode));
        Assert.StartsWith("nb_", key, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public void Users_set_list_remove_and_keys_list_revoke_work_on_the_data_folder()
    {
        Run("users", "add", "alice", "--data-dir", _app.DataDir);
        var (_, created, _) = Run("keys", "create", "alice", "--data-dir", _app.DataDir);
        var id = ApiKeys.IdOf(created.TrimEnd().Split('\n')[^1])!;

        var set = Run("users", "set", "alice", "--priority", "low", "--images-per-day", "9", "--data-dir", _app.DataDir);
        var users = Run("users", "list", "--data-dir", _app.DataDir);
        var revoke = Run("keys", "revoke", "alice", id, "--data-dir", _app.DataDir);
        var keys = Run("keys", "list", "alice", "--data-dir", _app.DataDir);
        var remove = Run("users", "remove", "alice", "--data-dir", _app.DataDir);
        var after = Run("users", "list", "--data-dir", _app.DataDir);

        Assert.Equal(0, set.Code);
        Assert.Contains("alice\tuser\tpriority=low", users.Out, StringComparison.Ordinal);
        Assert.Contains("images_per_day=9", users.Out, StringComparison.Ordinal);
        Assert.Equal(0, revoke.Code);
        Assert.Contains($"{id}\tdefault", keys.Out, StringComparison.Ordinal);
        Assert.Contains("revoked=", keys.Out, StringComparison.Ordinal);
        Assert.Equal(0, remove.Code);
        Assert.Equal("", after.Out);
    }

    [Theory]
    [InlineData("users", "set", "nobody", "--max-steps", "5")]
    [InlineData("users", "set", "alice", "--priority", "urgent")]
    [InlineData("users", "add", "../etc")]
    [InlineData("keys", "create", "nobody")]
    [InlineData("keys", "revoke", "alice", "000000000000")]
    public void Refused_commands_exit_1_with_a_message(params string[] args)
    {
        Run("users", "add", "alice", "--data-dir", _app.DataDir);

        var (code, _, error) = Run([.. args, "--data-dir", _app.DataDir]);

        Assert.Equal(1, code);
        Assert.NotEqual("", error.Trim());
    }

    [Fact]
    public void Unknown_option_exits_2_with_usage()
    {
        var (code, _, error) = Run("users", "add", "alice", "--colour", "red", "--data-dir", _app.DataDir);

        Assert.Equal(2, code);
        Assert.Contains("Usage:", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Running_server_holds_the_data_folder_and_the_verb_points_to_the_admin_api()
    {
        _ = _app.Services;

        var (code, _, error) = Run("users", "add", "alice", "--data-dir", _app.DataDir);

        Assert.Equal(3, code);
        Assert.Contains("/v1/admin/users", error, StringComparison.Ordinal);
    }

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var code = AccountsCli.Run(args[0], args[1..], stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }
}
