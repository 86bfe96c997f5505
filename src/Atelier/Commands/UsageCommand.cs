using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Atelier.Client;
using Spectre.Console;

namespace Atelier.Commands;

/// <summary><c>atelier usage</c>: a usage indicator over time (<c>GET /api/v1/usage/query</c>), one column per series.</summary>
internal sealed class UsageCommand : Command
{
    public UsageCommand()
        : base("usage", "Usage over time, e.g. jobs per hour by state (a tenant admin token)")
    {
        var options = new ClientOptions();
        var indicator = new Option<string>("--indicator") { Description = "What to count", HelpName = "NAME", DefaultValueFactory = _ => "jobs" };
        var from = new Option<DateTimeOffset?>("--from") { Description = "Start (ISO 8601) [default: 24 hours ago]", HelpName = "TIME" };
        var to = new Option<DateTimeOffset?>("--to") { Description = "End (ISO 8601) [default: now]", HelpName = "TIME" };
        var step = new Option<string>("--step") { Description = "The width of one point", HelpName = "STEP", DefaultValueFactory = _ => "hour" };
        step.AcceptOnlyFromAmong("minute", "hour", "day");
        var by = new Option<string>("--by") { Description = "What splits the series", HelpName = "DIMENSION", DefaultValueFactory = _ => "state" };
        ClientVerb.Configure(this, options, async (parse, api, output, ct) =>
        {
            var now = TimeProvider.System.GetUtcNow();
            var end = parse.GetValue(to) ?? now;
            var start = parse.GetValue(from) ?? end.AddHours(-24);
            var query = $"api/v1/usage/query?indicator={Uri.EscapeDataString(parse.GetValue(indicator)!)}&from={Uri.EscapeDataString(Iso(start))}"
                        + $"&to={Uri.EscapeDataString(Iso(end))}&step={parse.GetValue(step)}&by={Uri.EscapeDataString(parse.GetValue(by)!)}";
            JsonElement data;
            try
            {
                data = await api.GetAsync(query, ct);
            }
            catch (ClientException e) when (e.Status == 404 && e.ErrorCode == "no_route")
            {
                throw new ClientException(ExitCodes.NotFound, $"{api.Connection.Server} has no usage API (GET /api/v1/usage/query answered 404): the server is older than this CLI.");
            }

            output.Print(data, Table);
            return ExitCodes.Ok;
        }, indicator, from, to, step, by);
    }

    private static string Iso(DateTimeOffset time) => time.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>One row per point in time, one column per series (its key), the values in the indicator's unit.</summary>
    private static Table Table(JsonElement data)
    {
        var series = data.TryGetProperty("series", out var s) && s.ValueKind == JsonValueKind.Array ? s.EnumerateArray().ToList() : [];
        var unit = Output.Cell(data, "unit");
        var table = new Table().AddColumn("at");
        var rows = new SortedDictionary<string, string[]>(StringComparer.Ordinal);
        for (var i = 0; i < series.Count; i++)
        {
            table.AddColumn(new TableColumn(Markup.Escape(Output.Cell(series[i], "key") is { Length: > 0 } key ? key : "(none)")).RightAligned());
            foreach (var point in series[i].TryGetProperty("points", out var p) && p.ValueKind == JsonValueKind.Array ? p.EnumerateArray() : [])
            {
                var at = Output.Cell(point, "at");
                if (!rows.TryGetValue(at, out var cells))
                {
                    rows[at] = cells = new string[series.Count];
                }

                cells[i] = Output.Cell(point, "value");
            }
        }

        foreach (var (at, cells) in rows)
        {
            table.AddRow([Markup.Escape(at), .. cells.Select(c => c ?? "0")]);
        }

        table.Caption($"{Markup.Escape(Output.Cell(data, "indicator"))} ({Markup.Escape(unit)}) per {Markup.Escape(Output.Cell(data, "step"))}, {Markup.Escape(Output.Cell(data, "from"))} to {Markup.Escape(Output.Cell(data, "to"))}");
        return table;
    }
}
