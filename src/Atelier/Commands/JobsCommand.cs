using System.CommandLine;
using Atelier.Client;

namespace Atelier.Commands;

/// <summary><c>atelier jobs</c>: generation jobs (any token of the tenant; an app token sees its app's).</summary>
internal sealed class JobsCommand : Command
{
    private static readonly (string, string)[] Columns =
        [("id", "id"), ("agent", "agentId"), ("kind", "kind"), ("state", "state"), ("model", "model.name"), ("progress", "progress.fraction"), ("created", "createdAt"), ("error", "errorCode")];

    public JobsCommand()
        : base("jobs", "Generation jobs (any token of the tenant)")
    {
        var options = new ClientOptions();
        var agent = new Option<string>("--agent") { Description = "The agent (id or name)", HelpName = "AGENT", DefaultValueFactory = _ => "default" };
        var state = new Option<string>("--state") { Description = "Only jobs in this state", HelpName = "STATE" };
        state.AcceptOnlyFromAmong("queued", "running", "succeeded", "failed", "canceled", "aborted");
        Subcommands.Add(ClientVerb.Create(options, "list", "List an agent's jobs, newest first", async (parse, api, output, ct) =>
        {
            var query = parse.GetValue(state) is { } s ? $"&state={s}" : "";
            output.PrintList(await api.GetAsync($"api/v1/agents/{Uri.EscapeDataString(parse.GetValue(agent)!)}/jobs?pageSize=100{query}", ct), Columns);
            return ExitCodes.Ok;
        }, agent, state));

        var id = new Argument<string>("id") { Description = "The job's (task's) id" };
        Subcommands.Add(ClientVerb.Create(options, "show", "Show one job", async (parse, api, output, ct) =>
        {
            output.PrintObject(await api.GetAsync($"api/v1/tasks/{Uri.EscapeDataString(parse.GetValue(id)!)}", ct),
                [.. Columns, ("step", "progress.step"), ("steps", "progress.steps"), ("stage", "progress.stage"), ("attempt", "attempt"), ("started", "startedAt"),
                    ("finished", "finishedAt"), ("message", "errorMessage"), ("result expires", "resultExpiresAt")]);
            return ExitCodes.Ok;
        }, id));

        var cancelId = new Argument<string>("id") { Description = "The job's (task's) id" };
        Subcommands.Add(ClientVerb.Create(options, "cancel", "Cancel a job: a queued one at once, a running one at the worker's next heartbeat", async (parse, api, output, ct) =>
        {
            output.PrintObject(await api.PostAsync($"api/v1/tasks/{Uri.EscapeDataString(parse.GetValue(cancelId)!)}/cancellation", null, ct),
                [.. Columns, ("cancel requested", "cancelRequested")]);
            return ExitCodes.Ok;
        }, cancelId));
    }
}

/// <summary><c>atelier images</c>: the generated-images library.</summary>
internal sealed class ImagesCommand : Command
{
    public ImagesCommand()
        : base("images", "Generated images (any token of the tenant)")
    {
        var options = new ClientOptions();
        var job = new Option<string>("--job") { Description = "Only the images of this job", HelpName = "ID" };
        var app = new Option<string>("--app") { Description = "Only the images of this app", HelpName = "ID" };
        Subcommands.Add(ClientVerb.Create(options, "list", "List generated images, newest first", async (parse, api, output, ct) =>
        {
            var query = (parse.GetValue(job) is { } j ? $"&jobId={Uri.EscapeDataString(j)}" : "") + (parse.GetValue(app) is { } a ? $"&appId={Uri.EscapeDataString(a)}" : "");
            output.PrintList(await api.GetAsync($"api/v1/images?pageSize=100{query}", ct),
                ("id", "id"), ("job", "jobId"), ("index", "index"), ("seed", "seed"), ("width", "width"), ("height", "height"), ("bytes", "size"), ("created", "createdAt"));
            return ExitCodes.Ok;
        }, job, app));
    }
}
