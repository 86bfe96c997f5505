using System.Collections;
using System.Globalization;
using System.Reflection;
using System.Text.RegularExpressions;
using Atelier.Server.Hosting;
using Atelier.Server.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Atelier.Server.Tests.Platform;

/// <summary>
/// Options (issue 13, item 5): each section is validated at start and a bad configuration is refused with every problem
/// at once; docs/operations.md names every setting with its default, and nothing else.
/// </summary>
public partial class OptionsTests
{
    /// <summary>
    /// Configuration files are read once: a reload watcher on the content root would watch every folder under it, and
    /// the data folder (./data by default) is one, so every database write and stored file would wake it.
    /// </summary>
    [Fact]
    public async Task ConfigurationFiles_AreNotWatched()
    {
        await using var host = await TestHost.StartAsync();
        var root = (Microsoft.Extensions.Configuration.IConfigurationRoot)host.Services.GetRequiredService<Microsoft.Extensions.Configuration.IConfiguration>();
        var files = root.Providers.OfType<Microsoft.Extensions.Configuration.FileConfigurationProvider>().ToList();
        Assert.Contains(files, f => f.Source.Path == "appsettings.json");
        Assert.All(files, f => Assert.False(f.Source.ReloadOnChange, $"{f.Source.Path} is watched"));
    }

    [Fact]
    public async Task Start_InvalidKeysInSeveralSections_FailsNamingEveryKey()
    {
        await using var db = await TestDatabase.CreateAsync();
        var bad = new Dictionary<string, string>
        {
            ["Atelier:Jobs:MaxAttempts"] = "0",                          // Core, a range
            ["Atelier:Webhooks:TimeoutSeconds"] = "ten",                 // Core, not a number
            ["Atelier:RateLimits:PerCredential:TokenLimit"] = "0",       // Server, inside a nested object
            ["Atelier:Storage:Provider"] = "ftp",                        // Storage, an unknown backend
            ["Atelier:Database:SqliteBusyTimeoutMs"] = "-1",             // Data
            ["Atelier:Sessions:SweepIntervalSecs"] = "30",               // a key that names no setting
        };

        var error = await Assert.ThrowsAsync<InvalidConfigurationException>(() => TestHost.StartAsync(bad, database: db));

        Assert.Equal(bad.Count, error.Problems.Count);
        foreach (var key in bad.Keys)
        {
            Assert.Single(error.Problems, p => p.Contains(key, StringComparison.Ordinal));
            Assert.Contains(key, error.Message, StringComparison.Ordinal);
        }

        Assert.Contains(error.Problems, p => p.Contains("Atelier:Storage:Provider", StringComparison.Ordinal) && p.Contains("local, s3", StringComparison.Ordinal));
        Assert.Contains(error.Problems, p => p.Contains("Atelier:Jobs:MaxAttempts must be between 1 and 100", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Serve_InvalidConfiguration_ExitsWithEveryProblemAndListensNowhere()
    {
        var folder = Directory.CreateTempSubdirectory("atelier-options-").FullName;
        try
        {
            await using var process = AtelierProcess.Start(folder, "serve", "--Atelier:Server:Urls=http://127.0.0.1:0",
                $"--Atelier:Server:DataDirectory={Path.Combine(folder, "data")}",
                "--Atelier:Images:UrlLifetimeSeconds=999999999", "--Atelier:Database:Provider=oracle", "--Atelier:Embedded:LocalWorkerSlots=0",
                "--Atelier:Embedded:LocalWorkerDevice=gpu");
            await process.WaitForExitAsync(TimeSpan.FromSeconds(120)); // a deadline for a loaded machine, not a measure

            Assert.Equal(AtelierServer.InvalidConfigurationExitCode, process.ExitCode);
            Assert.Contains("The configuration is invalid (4 problems)", process.Output, StringComparison.Ordinal);
            Assert.Contains("Atelier:Embedded:LocalWorkerDevice must be cpu, cuda or cuda:N", process.Output, StringComparison.Ordinal);
            Assert.Contains("Atelier:Images:UrlLifetimeSeconds", process.Output, StringComparison.Ordinal);
            Assert.Contains("Atelier:Database:Provider: unknown provider 'oracle'. Known providers: sqlite, postgres.", process.Output, StringComparison.Ordinal);
            Assert.Contains("Atelier:Embedded:LocalWorkerSlots", process.Output, StringComparison.Ordinal);
            Assert.DoesNotContain("Now listening", process.Output, StringComparison.Ordinal);
            Assert.DoesNotContain("Unhandled exception", process.Output, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void OperationsDoc_OptionsTables_NameEverySettingWithItsDefault()
    {
        var expected = Settings().ToDictionary(s => s.Key, s => s.Default, StringComparer.Ordinal);
        var rows = DocumentedRows();

        var problems = new List<string>();
        problems.AddRange(rows.GroupBy(r => r.Key).Where(g => g.Count() > 1).Select(g => $"{g.Key} has {g.Count()} rows"));
        problems.AddRange(rows.Where(r => !expected.ContainsKey(r.Key)).Select(r => $"{r.Key} is documented but is no setting"));
        problems.AddRange(expected.Where(e => rows.All(r => r.Key != e.Key)).Select(e => $"missing row: | `{e.Key}` | {Cell(e.Value)} | … |"));
        problems.AddRange(rows.Where(r => expected.TryGetValue(r.Key, out var d) && d != r.Default)
            .Select(r => $"{r.Key}: the table says {Cell(r.Default)}, the code {Cell(expected[r.Key])}"));
        problems.AddRange(rows.Where(r => string.IsNullOrWhiteSpace(r.Meaning)).Select(r => $"{r.Key} has no meaning"));
        Assert.True(problems.Count == 0, "docs/operations.md, Configuration:\n" + string.Join('\n', problems));
        Assert.Contains(rows, r => r.Key == "Atelier:Jobs:MaxAttempts" && r.Default == "3");
    }

    [Fact]
    public void OperationsDoc_EveryKeyItMentions_Exists()
    {
        var settings = Settings().ToList();
        var sections = settings.Select(s => s.Key[..s.Key.LastIndexOf(':')]).ToHashSet(StringComparer.Ordinal);
        var lists = settings.Where(s => s.IsList).Select(s => s.Key + ":").ToList();
        var mentioned = KeyMention().Matches(File.ReadAllText(OperationsDoc())).Select(m => m.Value).Distinct().ToList();

        Assert.NotEmpty(mentioned);
        var stale = mentioned.Where(k => !sections.Contains(k) && settings.All(s => s.Key != k) && !lists.Any(l => k.StartsWith(l, StringComparison.Ordinal)));
        Assert.Empty(stale);
    }

    /// <summary>Every setting the code binds: the properties (with public setters) of each options class that has a <c>SectionName</c>, nested objects walked into.</summary>
    private static IEnumerable<(string Key, string Default, bool IsList)> Settings()
    {
        var assemblies = Directory.GetFiles(AppContext.BaseDirectory, "Atelier.*.dll")
            .Where(f => !f.EndsWith(".Tests.dll", StringComparison.Ordinal))
            .Select(f => Assembly.Load(AssemblyName.GetAssemblyName(f)));
        var options = assemblies.SelectMany(a => a.GetExportedTypes())
            .Select(t => (Type: t, Field: t.GetField("SectionName", BindingFlags.Public | BindingFlags.Static)))
            .Where(t => t.Field is { IsLiteral: true })
            .ToList();
        Assert.True(options.Count >= 17, $"found {options.Count} options classes");
        return options.SelectMany(o => Walk((string)o.Field!.GetRawConstantValue()!, Activator.CreateInstance(o.Type)!));
    }

    private static IEnumerable<(string Key, string Default, bool IsList)> Walk(string prefix, object instance)
    {
        foreach (var p in instance.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.SetMethod is { IsPublic: true }))
        {
            var value = p.GetValue(instance);
            var isList = p.PropertyType != typeof(string) && typeof(IEnumerable).IsAssignableFrom(p.PropertyType);
            if (value is not null && !isList && p.PropertyType.IsClass && p.PropertyType != typeof(string))
            {
                foreach (var nested in Walk($"{prefix}:{p.Name}", value))
                {
                    yield return nested;
                }
            }
            else
            {
                yield return ($"{prefix}:{p.Name}", Format(value), isList);
            }
        }
    }

    /// <summary>A default as the table writes it: the value, items joined by ", ", or "none".</summary>
    private static string Format(object? value) => value switch
    {
        null or "" => "none",
        string s => s,
        bool b => b ? "true" : "false",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        IEnumerable items => items.Cast<object?>().Select(Format).ToList() is { Count: > 0 } all ? string.Join(", ", all) : "none",
        _ => value.ToString() ?? "none",
    };

    private static string Cell(string value) => value == "none" ? "none" : $"`{value}`";

    /// <summary>The rows of the Configuration tables: <c>| `key` | `default` or none [note] | meaning |</c>.</summary>
    private static List<(string Key, string Default, string Meaning)> DocumentedRows() =>
        [.. File.ReadLines(OperationsDoc()).Select(l => Row().Match(l)).Where(m => m.Success)
            .Select(m => (m.Groups["key"].Value, m.Groups["default"].Success ? m.Groups["default"].Value : "none", m.Groups["meaning"].Value))];

    private static string OperationsDoc()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Atelier.slnx")))
        {
            dir = dir.Parent;
        }

        Assert.NotNull(dir);
        return Path.Combine(dir.FullName, "docs", "operations.md");
    }

    [GeneratedRegex(@"^\| `(?<key>Atelier:[^`]+)` \| (?:`(?<default>[^`]*)`|none)[^|]* \| (?<meaning>[^|]*(?:\\\|[^|]*)*)\|\s*$")]
    private static partial Regex Row();

    [GeneratedRegex(@"(?<![_\w])Atelier(?::[A-Za-z0-9]+)+")]
    private static partial Regex KeyMention();
}
