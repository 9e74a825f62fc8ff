using Microsoft.Extensions.Configuration;
using NewBie.Host.Cli;

namespace NewBie.Host.Tests.Cli;

public sealed class ServeBuilderTests
{
    [Fact]
    public void Serve_reads_its_settings_files_once_without_watching_the_working_folder()
    {
        var builder = Verbs.CreateServeBuilder(["--model", "tiny", "--data-dir", "/srv/newbie-data"]);

        var files = builder.Configuration.Sources.OfType<FileConfigurationSource>().ToList();
        Assert.Contains(files, f => f.Path == "appsettings.json");
        // A reload watcher covers the whole content root (the working folder, with data/ in it) and wakes on every
        // database write.
        Assert.All(files, f => Assert.False(f.ReloadOnChange, $"{f.Path} is watched for changes"));
        // The serve options still map onto their settings.
        Assert.Equal("tiny", builder.Configuration["Models:Model"]);
        Assert.Equal("/srv/newbie-data", builder.Configuration["Storage:DataDir"]);
    }
}
