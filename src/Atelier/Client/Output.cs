using System.Globalization;
using System.Text.Json;
using Spectre.Console;

namespace Atelier.Client;

/// <summary>
/// What a verb prints: a table (or with <c>--json</c> the answer's data as JSON) on standard output; progress bars on
/// standard error, and only when it is a terminal and <c>--quiet</c> was not given, so that scripts read clean output.
/// </summary>
internal sealed class Output(bool json, bool quiet)
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    private readonly IAnsiConsole _out = Unwrapped(AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) }));

    private readonly IAnsiConsole _err = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });

    public bool Json => json;

    /// <summary>Into a pipe or a file, a table is as wide as its content: no cell is wrapped at a width no terminal has.</summary>
    private static IAnsiConsole Unwrapped(IAnsiConsole console)
    {
        if (Console.IsOutputRedirected)
        {
            console.Profile.Width = 4096;
        }

        return console;
    }

    /// <summary>Whether progress is shown: standard error is a terminal and not <c>--quiet</c>.</summary>
    public bool ShowsProgress => !quiet && !Console.IsErrorRedirected;

    /// <summary>The data as JSON (with <c>--json</c>), else as built by <paramref name="table"/>.</summary>
    public void Print(JsonElement data, Func<JsonElement, Table> table)
    {
        if (json)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(data, Indented));
        }
        else
        {
            _out.Write(table(data));
        }
    }

    /// <summary>A table of a list's items (a page's <c>items</c>, or an array) with the given columns (JSON property names).</summary>
    public void PrintList(JsonElement data, params (string Header, string Property)[] columns) =>
        Print(data, d => ListTable(Items(d), columns));

    /// <summary>A two-column table of one object's fields.</summary>
    public void PrintObject(JsonElement data, params (string Header, string Property)[] fields) =>
        Print(data, d =>
        {
            var table = new Table().AddColumn("field").AddColumn("value");
            foreach (var (header, property) in fields)
            {
                table.AddRow(Markup.Escape(header), Markup.Escape(Cell(d, property)));
            }

            return table;
        });

    /// <summary>A message for a person (not with <c>--json</c>, where standard output is the data alone): on standard error.</summary>
    public void Note(string text)
    {
        if (!quiet)
        {
            Console.Error.WriteLine(text);
        }
    }

    /// <summary>Runs <paramref name="work"/> with one progress bar (or none: the callback's updates go nowhere).</summary>
    public async Task<T> ProgressAsync<T>(string description, double maxValue, Func<IProgressBar, Task<T>> work)
    {
        if (!ShowsProgress)
        {
            return await work(new NoBar());
        }

        return await _err.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .StartAsync(async ctx => await work(new Bar(ctx.AddTask(Markup.Escape(description), maxValue: Math.Max(maxValue, 1)))));
    }

    public static IEnumerable<JsonElement> Items(JsonElement data) =>
        data.ValueKind == JsonValueKind.Array ? data.EnumerateArray()
        : data.ValueKind == JsonValueKind.Object && data.TryGetProperty("items", out var items) && items.ValueKind == JsonValueKind.Array ? items.EnumerateArray()
        : [];

    public static Table ListTable(IEnumerable<JsonElement> items, IReadOnlyList<(string Header, string Property)> columns)
    {
        var table = new Table();
        foreach (var (header, _) in columns)
        {
            table.AddColumn(Markup.Escape(header));
        }

        foreach (var item in items)
        {
            table.AddRow(columns.Select(c => Markup.Escape(Cell(item, c.Property))).ToArray());
        }

        return table;
    }

    /// <summary>A property as text: a dotted path walks into objects (and over an array's items); arrays are joined; null is empty.</summary>
    public static string Cell(JsonElement item, string property)
    {
        var dot = property.IndexOf('.', StringComparison.Ordinal);
        var (head, rest) = dot < 0 ? (property, null) : (property[..dot], property[(dot + 1)..]);
        if (item.ValueKind != JsonValueKind.Object || !item.TryGetProperty(head, out var value))
        {
            return "";
        }

        return rest is null ? Text(value)
            : value.ValueKind == JsonValueKind.Array ? string.Join(", ", value.EnumerateArray().Select(v => Cell(v, rest)))
            : Cell(value, rest);
    }

    public static string Text(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString() ?? "",
        JsonValueKind.Null or JsonValueKind.Undefined => "",
        JsonValueKind.True => "yes",
        JsonValueKind.False => "no",
        JsonValueKind.Number => value.TryGetInt64(out var l) ? l.ToString(CultureInfo.InvariantCulture) : value.GetDouble().ToString("0.###", CultureInfo.InvariantCulture),
        JsonValueKind.Array => string.Join(", ", value.EnumerateArray().Select(Text)),
        _ => value.GetRawText(),
    };

    /// <summary>One progress bar: its value, its maximum, and its description.</summary>
    internal interface IProgressBar
    {
        void Report(double value, double? maxValue = null, string? description = null);
    }

    private sealed class Bar(ProgressTask task) : IProgressBar
    {
        public void Report(double value, double? maxValue = null, string? description = null)
        {
            if (maxValue is > 0)
            {
                task.MaxValue = maxValue.Value;
            }

            if (description is not null)
            {
                task.Description = Markup.Escape(description);
            }

            task.Value = Math.Min(value, task.MaxValue);
        }
    }

    private sealed class NoBar : IProgressBar
    {
        public void Report(double value, double? maxValue = null, string? description = null)
        {
        }
    }
}
