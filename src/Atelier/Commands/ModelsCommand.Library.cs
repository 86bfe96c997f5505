using System.CommandLine;
using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Atelier.Client;

namespace Atelier.Commands;

/// <summary><c>atelier models list | versions | upload | download</c>: the tenant's model library over the API (a tenant admin token).</summary>
internal sealed partial class ModelsCommand
{
    private static readonly string[] Types = ["checkpoint", "lora", "embedding", "vae", "controlnet", "upscaler", "onnx"];

    private static readonly (string, string)[] VersionColumns = [("id", "id"), ("model", "modelId"), ("name", "name"), ("sync", "syncState"), ("files", "files.aliasName"), ("created", "createdAt")];

    private void AddLibraryVerbs()
    {
        var options = new ClientOptions();
        Subcommands.Add(ClientVerb.Create(options, "list", "List the tenant's models", async (parse, api, output, ct) =>
        {
            output.PrintList(await api.GetAsync("api/v1/models?pageSize=100", ct), ("id", "id"), ("name", "name"), ("type", "type"), ("tags", "tags"), ("created", "createdAt"));
            return ExitCodes.Ok;
        }));

        var modelArgument = new Argument<string>("model") { Description = "The model's id or name" };
        Subcommands.Add(ClientVerb.Create(options, "versions", "List a model's versions and their files", async (parse, api, output, ct) =>
        {
            var model = await FindModelAsync(api, parse.GetValue(modelArgument)!, ct)
                        ?? throw new ClientException(ExitCodes.NotFound, $"No model {parse.GetValue(modelArgument)} in the tenant.");
            output.Print(await api.GetAsync($"api/v1/models/{Output.Cell(model, "id")}/versions", ct), d => Output.ListTable(Output.Items(d), VersionColumns));
            return ExitCodes.Ok;
        }, modelArgument));

        var file = new Argument<FileInfo>("file") { Description = "The model file to upload" };
        var type = TypeOption();
        var model = ModelOption();
        var version = new Option<string>("--version") { Description = "The version's name [default: the first 12 hex digits of the file's SHA-256]", HelpName = "NAME" };
        var alias = new Option<string>("--alias") { Description = "The file's name in the model (unique in the model) [default: the file's name]", HelpName = "NAME" };
        Subcommands.Add(ClientVerb.Create(options, "upload",
            "Upload a model file as a new version of a model (made if needed). Safe to run again: bytes the server has are not sent again, and a file already in the model is reported, not added twice",
            async (parse, api, output, ct) => await UploadAsync(api, output, parse.GetValue(file)!, parse.GetValue(type)!, parse.GetValue(model)!, parse.GetValue(version), parse.GetValue(alias), ct),
            file, type, model, version, alias));

        var url = new Argument<string>("url") { Description = "Where the server downloads the file from (http or https)" };
        var downloadType = TypeOption();
        var downloadModel = ModelOption();
        var downloadVersion = new Option<string>("--version") { Description = "The version's name [default: the file's name]", HelpName = "NAME" };
        var downloadAlias = new Option<string>("--alias") { Description = "The file's name in the model [default: the URL's last segment]", HelpName = "NAME" };
        Subcommands.Add(ClientVerb.Create(options, "download", "Have the server download a model file from a URL as a new version of a model (made if needed), and follow its progress",
            async (parse, api, output, ct) => await DownloadAsync(api, output, parse.GetValue(url)!, parse.GetValue(downloadType)!, parse.GetValue(downloadModel)!,
                parse.GetValue(downloadVersion), parse.GetValue(downloadAlias), ct),
            url, downloadType, downloadModel, downloadVersion, downloadAlias));
    }

    private static Option<string> TypeOption()
    {
        var type = new Option<string>("--type") { Description = "The model's type", HelpName = "TYPE", Required = true };
        type.AcceptOnlyFromAmong(Types);
        return type;
    }

    private static Option<string> ModelOption() =>
        new("--model") { Description = "The model's name (or id): the version is added to it, and it is made when the tenant has none of that name", HelpName = "NAME", Required = true };

    private static async Task<int> UploadAsync(AtelierApi api, Output output, FileInfo file, string type, string modelName, string? versionName, string? alias, CancellationToken ct)
    {
        if (!file.Exists)
        {
            throw new ClientException(ExitCodes.NotFound, $"No file {file.FullName}.");
        }

        var size = file.Length;
        var sha256 = await output.ProgressAsync($"hashing {file.Name}", size, bar => HashAsync(file, bar, ct));
        alias ??= file.Name;
        versionName ??= sha256[..12];

        // Already in the model (a run that finished, or one interrupted after the version was made): nothing to do.
        var model = await FindModelAsync(api, modelName, ct);
        if (model is { } found)
        {
            CheckType(found, type);
            var versions = await api.GetAsync($"api/v1/models/{Output.Cell(found, "id")}/versions", ct);
            if (Output.Items(versions).FirstOrDefault(v => Output.Items(v.GetProperty("files")).Any(f => Output.Cell(f, "sha256") == sha256)) is { ValueKind: JsonValueKind.Object } existing)
            {
                output.Note($"{file.Name} ({sha256}) is already in model {modelName}, version {Output.Cell(existing, "name")}: nothing sent.");
                output.PrintObject(existing, VersionColumns);
                return ExitCodes.Ok;
            }
        }

        var modelId = model is { } m ? Output.Cell(m, "id") : Output.Cell(await api.PostAsync("api/v1/models", new { name = modelName, type }, ct), "id");
        var versionsPath = $"api/v1/models/{Uri.EscapeDataString(modelId)}/versions";

        // Bytes the tenant stored before (another model, an interrupted run's finished upload) are added by their hash: nothing is sent.
        try
        {
            var byHash = await api.PostAsync(versionsPath, new { name = versionName, files = new[] { new { aliasName = alias, sha256, primary = true } } }, ct);
            output.Note($"The server already has {file.Name} ({sha256}): added by its hash, nothing sent.");
            output.PrintObject(byHash, VersionColumns);
            return ExitCodes.Ok;
        }
        catch (ClientException e) when (e.Status == 404 && e.ErrorCode == "p_common_inputinvalid")
        {
            // not stored yet: upload it
        }

        var upload = await api.PostAsync("api/v1/uploads", new { type, fileName = file.Name, size, sha256 }, ct);
        var uploadId = Output.Cell(upload, "id");
        var (stored, completion) = await output.ProgressAsync($"uploading {file.Name}", size, bar => SendAsync(api, upload, file, bar, ct));
        if (upload.GetProperty("needsComplete").GetBoolean())
        {
            stored = await api.PostAsync($"api/v1/uploads/{Uri.EscapeDataString(uploadId)}/complete", completion, ct);
        }

        if (Output.Cell(stored, "state") != "stored")
        {
            throw new ClientException(ExitCodes.Failed, $"Upload {uploadId} is {Output.Cell(stored, "state")}: {Output.Cell(stored, "error")}");
        }

        var created = await api.PostAsync(versionsPath, new { name = versionName, files = new[] { new { aliasName = alias, uploadId, primary = true } } }, ct);
        output.PrintObject(created, VersionColumns);
        return ExitCodes.Ok;
    }

    private static async Task<string> HashAsync(FileInfo file, Output.IProgressBar bar, CancellationToken ct)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        await using var stream = new FileStream(file.FullName, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);
        var buffer = new byte[1 << 20];
        long done = 0;
        int read;
        while ((read = await stream.ReadAsync(buffer, ct)) > 0)
        {
            hash.AppendData(buffer, 0, read);
            done += read;
            bar.Report(done);
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>
    /// PUTs the bytes where the upload says, with the headers it names (the local store's secret) and nothing else: a
    /// presigned S3 URL must not get the Atelier credential. An upload past the store's one-PUT limit lists parts: each
    /// slice of the file goes to its own presigned URL, and the ETags they answer are what completing it needs. Returns
    /// the upload as the server then sees it, and the body to complete it with (null for one PUT).
    /// </summary>
    private static async Task<(JsonElement Upload, object? Completion)> SendAsync(AtelierApi api, JsonElement upload, FileInfo file, Output.IProgressBar bar, CancellationToken ct)
    {
        using var http = new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
        await using var stream = new FileStream(file.FullName, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);
        if (upload.TryGetProperty("parts", out var parts) && parts.ValueKind == JsonValueKind.Array)
        {
            var sent = new List<object>();
            foreach (var part in parts.EnumerateArray())
            {
                var number = part.GetProperty("partNumber").GetInt32();
                var offset = part.GetProperty("offset").GetInt64();
                using var response = await PutAsync(http, new Uri(Output.Cell(part, "url")), new ProgressContent(stream, offset, part.GetProperty("size").GetInt64(), bar), null, ct);
                if (!response.IsSuccessStatusCode)
                {
                    throw new ClientException(ExitCodes.Failed, $"The object store refused part {number}: HTTP {(int)response.StatusCode}.");
                }

                var etag = response.Headers.ETag?.Tag ?? (response.Headers.TryGetValues("ETag", out var raw) ? raw.FirstOrDefault() : null)
                           ?? throw new ClientException(ExitCodes.Failed, $"The object store answered part {number} without an ETag (a bucket CORS rule must expose it to browsers; a CLI needs nothing).");
                sent.Add(new { partNumber = number, etag });
            }

            return (upload, new { parts = sent });
        }

        using (var response = await PutAsync(http, new Uri(api.Connection.Server, Output.Cell(upload, "url")), new ProgressContent(stream, 0, stream.Length, bar), upload, ct))
        {
            if (upload.GetProperty("needsComplete").GetBoolean())
            {
                if (!response.IsSuccessStatusCode)
                {
                    throw new ClientException(ExitCodes.Failed, $"The object store refused the bytes: HTTP {(int)response.StatusCode}.");
                }

                return (upload, null);
            }

            return (await AtelierApi.DataAsync(response, ct), null);
        }
    }

    private static async Task<HttpResponseMessage> PutAsync(HttpClient http, Uri target, HttpContent content, JsonElement? upload, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, target) { Content = content };
        if (upload is { } u && u.TryGetProperty("headers", out var headers) && headers.ValueKind == JsonValueKind.Object)
        {
            foreach (var header in headers.EnumerateObject())
            {
                request.Headers.TryAddWithoutValidation(header.Name, header.Value.GetString());
            }
        }

        try
        {
            return await http.SendAsync(request, ct);
        }
        catch (HttpRequestException e)
        {
            throw new ClientException(ExitCodes.Network, $"Sending the bytes to {target.GetLeftPart(UriPartial.Path)} failed: {e.Message}. Run the same command again to retry.");
        }
    }

    private static async Task<int> DownloadAsync(AtelierApi api, Output output, string address, string type, string modelName, string? versionName, string? alias, CancellationToken ct)
    {
        if (!Uri.TryCreate(address, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
        {
            throw new ClientException(ExitCodes.Usage, $"'{address}' is not an http:// or https:// address.");
        }

        alias ??= WebUtility.UrlDecode(url.Segments[^1]).Trim('/') is { Length: > 0 } last ? last : "model.safetensors";
        versionName ??= alias;
        var model = await FindModelAsync(api, modelName, ct);
        if (model is { } found)
        {
            CheckType(found, type);
        }

        var modelId = model is { } m ? Output.Cell(m, "id") : Output.Cell(await api.PostAsync("api/v1/models", new { name = modelName, type }, ct), "id");
        var version = await api.PostAsync($"api/v1/models/{Uri.EscapeDataString(modelId)}/versions",
            new { name = versionName, files = new[] { new { aliasName = alias, url = url.ToString(), primary = true } } }, ct);
        var fileId = Output.Cell(version.GetProperty("files")[0], "id");
        output.Note($"Version {Output.Cell(version, "id")}: the server downloads {alias} (file {fileId}).");
        await output.ProgressAsync($"downloading {alias}", 100, async bar =>
        {
            while (true)
            {
                JsonElement state;
                try
                {
                    state = await api.GetAsync($"api/v1/model-files/{Uri.EscapeDataString(fileId)}/download", ct);
                }
                catch (ClientException e) when (e.Status is 502)
                {
                    throw new ClientException(ExitCodes.Failed, $"The download failed: {e.Message}");
                }

                var total = state.TryGetProperty("totalBytes", out var t) && t.ValueKind == JsonValueKind.Number ? t.GetDouble() : 0;
                var done = state.GetProperty("downloadedBytes").GetDouble();
                bar.Report(total > 0 ? done : 0, total > 0 ? total : null, $"downloading {alias} ({Output.Cell(state, "state")})");
                if (Output.Cell(state, "state") == "stored")
                {
                    bar.Report(total > 0 ? total : 1, total > 0 ? total : 1);
                    return true;
                }

                await Task.Delay(TimeSpan.FromMilliseconds(500), ct);
            }
        });
        output.PrintObject(await api.GetAsync($"api/v1/model-versions/{Uri.EscapeDataString(Output.Cell(version, "id"))}", ct), VersionColumns);
        return ExitCodes.Ok;
    }

    /// <summary>The tenant's model with this id or exactly this name, or null.</summary>
    private static async Task<JsonElement?> FindModelAsync(AtelierApi api, string idOrName, CancellationToken ct)
    {
        var page = await api.GetAsync($"api/v1/models?pageSize=100&name={Uri.EscapeDataString(idOrName)}", ct);
        if (Output.Items(page).FirstOrDefault(m => Output.Cell(m, "name") == idOrName) is { ValueKind: JsonValueKind.Object } byName)
        {
            return byName;
        }

        try
        {
            return await api.GetAsync($"api/v1/models/{Uri.EscapeDataString(idOrName)}", ct);
        }
        catch (ClientException e) when (e.Status == 404)
        {
            return null;
        }
    }

    private static void CheckType(JsonElement model, string type)
    {
        if (Output.Cell(model, "type") != type)
        {
            throw new ClientException(ExitCodes.Failed, $"Model {Output.Cell(model, "name")} is a {Output.Cell(model, "type")}, not a {type}.");
        }
    }

    /// <summary>A file as a request body, counting the bytes as they go.</summary>
    /// <summary>The bytes of a file from <paramref name="offset"/>, <paramref name="length"/> of them, reporting the file's overall progress as they go.</summary>
    private sealed class ProgressContent(Stream source, long offset, long length, Output.IProgressBar bar) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context) => await SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
        {
            var buffer = new byte[1 << 16];
            source.Position = offset;
            long sent = 0;
            while (sent < length)
            {
                var read = await source.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, length - sent)), cancellationToken);
                if (read == 0)
                {
                    throw new IOException("The file became shorter while it was being sent.");
                }

                await stream.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                sent += read;
                bar.Report(offset + sent);
            }
        }

        protected override bool TryComputeLength(out long length1)
        {
            length1 = length;
            return true;
        }
    }
}
