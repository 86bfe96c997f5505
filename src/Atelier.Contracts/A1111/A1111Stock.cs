namespace Atelier.Contracts.A1111;

/// <summary>
/// The answers of AUTOMATIC1111's (1.10) listing routes that the server and <c>atelier engine</c> share, in A1111's
/// shapes (snake_case). A list of a kind Atelier does not have (hypernetworks, face restorers, styles, scripts,
/// extensions) is an empty list, as A1111 answers with none installed; never a 404 that breaks a client's start.
/// </summary>
public static class A1111Stock
{
    /// <summary>The upscalers that need no model, as A1111 lists its own: None, Lanczos, Nearest (extras and, later, hires fix).</summary>
    public static readonly IReadOnlyList<object> Upscalers =
    [
        new { name = "None", model_name = (string?)null, model_path = (string?)null, model_url = (string?)null, scale = 4.0 },
        new { name = "Lanczos", model_name = (string?)null, model_path = (string?)null, model_url = (string?)null, scale = 4.0 },
        new { name = "Nearest", model_name = (string?)null, model_path = (string?)null, model_url = (string?)null, scale = 4.0 },
    ];

    public static readonly IReadOnlyList<object> None = [];

    /// <summary>A1111 1.10's samplers with their aliases (<c>sd_samplers_kdiffusion</c>, <c>_timesteps</c>, <c>_lcm</c>).</summary>
    public static readonly IReadOnlyList<(string Name, string Alias)> Samplers =
    [
        ("DPM++ 2M", "k_dpmpp_2m"), ("DPM++ SDE", "k_dpmpp_sde"), ("DPM++ 2M SDE", "k_dpmpp_2m_sde"), ("DPM++ 2M SDE Heun", "k_dpmpp_2m_sde_heun"),
        ("DPM++ 2S a", "k_dpmpp_2s_a"), ("DPM++ 3M SDE", "k_dpmpp_3m_sde"), ("Euler a", "k_euler_a"), ("Euler", "k_euler"), ("LMS", "k_lms"),
        ("Heun", "k_heun"), ("DPM2", "k_dpm_2"), ("DPM2 a", "k_dpm_2_a"), ("DPM fast", "k_dpm_fast"), ("DPM adaptive", "k_dpm_ad"),
        ("Restart", "restart"), ("DDIM", "ddim"), ("DDIM CFG++", "ddim_cfgpp"), ("PLMS", "plms"), ("UniPC", "unipc"), ("LCM", "k_lcm"),
    ];

    /// <summary>A1111 1.10's schedule labels, which also end its legacy sampler names ("DPM++ 2M Karras").</summary>
    public static readonly IReadOnlyList<string> ScheduleLabels =
        ["Automatic", "Uniform", "Karras", "Exponential", "Polyexponential", "SGM Uniform", "KL Optimal", "Align Your Steps", "Simple", "Normal", "DDIM", "Beta"];

    /// <summary>
    /// Whether A1111 1.10 knows this sampler: a name or alias (any case), or a legacy name of a sampler and a schedule.
    /// An engine may still lack one (the built-in engine has most, a ComfyUI server others); an unknown name is refused
    /// before anything is queued, where A1111 answers "Sampler not found".
    /// </summary>
    public static bool IsSampler(string name)
    {
        var n = name.Trim();
        bool Known(string s) => Samplers.Any(k => string.Equals(k.Name, s, StringComparison.OrdinalIgnoreCase) || string.Equals(k.Alias, s, StringComparison.OrdinalIgnoreCase));
        return Known(n) || ScheduleLabels.Any(l => n.EndsWith(" " + l, StringComparison.OrdinalIgnoreCase) && Known(n[..^(l.Length + 1)]));
    }

    /// <summary>The listing routes (under <c>/sdapi/v1</c>) whose answer is <see cref="None"/>.</summary>
    public static readonly IReadOnlyList<string> EmptyListRoutes =
        ["latent-upscale-modes", "hypernetworks", "face-restorers", "realesrgan-models", "prompt-styles", "extensions"];

    /// <summary>The housekeeping routes (POST, under <c>/sdapi/v1</c>) that have nothing to do on either server: they answer <c>{}</c>.</summary>
    public static readonly IReadOnlyList<string> NothingToDoRoutes = ["refresh-vae", "refresh-embeddings", "unload-checkpoint", "reload-checkpoint"];

    /// <summary><c>/scripts</c>: the scripts selectable per tab (A1111's titles, lower case): img2img's SD upscale.</summary>
    public static readonly object Scripts = new { txt2img = Array.Empty<string>(), img2img = new[] { "sd upscale" } };

    /// <summary>
    /// <c>/script-info</c>: each selectable script with its arguments as A1111 describes them (SD upscale: an info text,
    /// the tile overlap, the upscaler by index into <paramref name="upscalers"/>, the scale factor).
    /// </summary>
    public static object[] ScriptInfo(IEnumerable<string> upscalers) =>
    [
        new
        {
            name = "sd upscale", is_alwayson = false, is_img2img = true,
            args = new object[]
            {
                new { label = (string?)null, value = (object?)null, minimum = (double?)null, maximum = (double?)null, step = (double?)null, choices = (string[]?)null },
                new { label = "Tile overlap", value = (object?)64, minimum = (double?)0, maximum = (double?)256, step = (double?)16, choices = (string[]?)null },
                new { label = "Upscaler", value = (object?)"None", minimum = (double?)null, maximum = (double?)null, step = (double?)null, choices = (string[]?)upscalers.ToArray() },
                new { label = "Scale Factor", value = (object?)2.0, minimum = (double?)1, maximum = (double?)4, step = (double?)0.05, choices = (string[]?)null },
            },
        },
    ];

    /// <summary>
    /// <c>/cmd-flags</c>: A1111's command-line flags as a server started with <c>--api --nowebui</c> on the CPU would
    /// report them (the keys clients read: where models live, precision, memory modes, the API switches).
    /// </summary>
    public static Dictionary<string, object?> CmdFlags(string modelsDirectory, int port) => new()
    {
        ["api"] = true, ["nowebui"] = true, ["api_auth"] = null, ["api_log"] = false, ["listen"] = false, ["port"] = port,
        ["data_dir"] = modelsDirectory, ["models_dir"] = modelsDirectory, ["ckpt_dir"] = modelsDirectory, ["ckpt"] = null,
        ["vae_dir"] = null, ["vae_path"] = null, ["lora_dir"] = modelsDirectory, ["embeddings_dir"] = modelsDirectory,
        ["hypernetwork_dir"] = null, ["codeformer_models_path"] = null, ["gfpgan_models_path"] = null, ["esrgan_models_path"] = null,
        ["xformers"] = false, ["opt_sdp_attention"] = false, ["medvram"] = false, ["medvram_sdxl"] = false, ["lowvram"] = false,
        ["no_half"] = true, ["no_half_vae"] = true, ["precision"] = "full", ["upcast_sampling"] = false, ["use_cpu"] = new[] { "all" },
        ["device_id"] = null, ["skip_torch_cuda_test"] = true, ["disable_safe_unpickle"] = false, ["enable_insecure_extension_access"] = false,
        ["subpath"] = null, ["cors_allow_origins"] = null, ["tls_keyfile"] = null, ["tls_certfile"] = null, ["share"] = false,
        ["gradio_auth"] = null, ["hide_ui_dir_config"] = true, ["freeze_settings"] = false, ["ui_settings_file"] = "config.json",
    };

    /// <summary><c>/memory</c>: the machine's RAM (from <c>/proc/meminfo</c> where there is one) and, with no CUDA device, A1111's error entry.</summary>
    public static object Memory()
    {
        long total = 0, free = 0;
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
            {
                var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length >= 2 && long.TryParse(parts[1], out var kib))
                {
                    if (parts[0] == "MemTotal:")
                    {
                        total = kib * 1024;
                    }
                    else if (parts[0] == "MemAvailable:")
                    {
                        free = kib * 1024;
                    }
                }
            }
        }
        catch (IOException)
        {
            // no /proc: the runtime's view below
        }
        catch (UnauthorizedAccessException)
        {
            // the same
        }

        if (total == 0)
        {
            var gc = GC.GetGCMemoryInfo();
            total = gc.TotalAvailableMemoryBytes;
            free = Math.Max(0, total - gc.MemoryLoadBytes);
        }

        return new
        {
            ram = new { free, used = total - free, total },
            cuda = new { error = "no CUDA device: the built-in engine runs on the CPU" },
        };
    }

    /// <summary><c>/interrogate</c>: A1111's answer for an interrogation model it does not have (Atelier has no CLIP or DeepBooru interrogator).</summary>
    public static readonly object InterrogateMissing = new { detail = "Model not found" };
}
