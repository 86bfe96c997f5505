using System.Collections;
using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;

namespace Atelier.Server.Hosting;

/// <summary>
/// Checks every options section before the host is built, so that one start reports every problem at once: a value
/// that does not convert to its setting's type, a key that names no setting, and what each section's validator
/// refuses. (The validators run again when the host starts, as <c>ValidateOnStart</c> has them do for any host; by
/// then they pass.) A section is any options class with a <c>SectionName</c> constant that the services bind.
/// </summary>
internal static partial class ConfigurationCheck
{
    public static void ThrowIfInvalid(IConfiguration configuration, IServiceCollection services)
    {
        var sections = services
            .Where(d => d.ServiceType.IsGenericType && d.ServiceType.GetGenericTypeDefinition() == typeof(IConfigureOptions<>))
            .Select(d => d.ServiceType.GenericTypeArguments[0]).Distinct()
            .Select(t => (Type: t, Name: SectionName(t))).Where(s => s.Name is not null).ToList();

        // The options registrations alone, in a provider of their own: nothing else is made to check them.
        var probe = new ServiceCollection().AddOptions();
        foreach (var d in services.Where(d => d.ServiceType.IsGenericType && sections.Any(s => d.ServiceType.GenericTypeArguments.Contains(s.Type))))
        {
            probe.Add(d);
        }

        using var provider = probe.BuildServiceProvider();
        var problems = sections.SelectMany(s => Problems(configuration, provider, s.Type, s.Name!)).ToList();
        if (problems.Count > 0)
        {
            throw new InvalidConfigurationException(problems);
        }
    }

    public static string? SectionName(Type options) =>
        options.GetField("SectionName", BindingFlags.Public | BindingFlags.Static) is { IsLiteral: true } field ? field.GetRawConstantValue() as string : null;

    private static List<string> Problems(IConfiguration configuration, IServiceProvider provider, Type type, string section)
    {
        // Each key on its own, so that a value the binder refuses hides none after it.
        var problems = new List<string>();
        foreach (var (key, value) in configuration.GetSection(section).AsEnumerable().Where(kv => kv.Value is not null))
        {
            if (!Names(type, key[(section.Length + 1)..]))
            {
                problems.Add($"{key}: no such setting.");
                continue;
            }

            try
            {
                new ConfigurationBuilder().AddInMemoryCollection([new(key, value)]).Build().GetSection(section).Bind(Activator.CreateInstance(type));
            }
            catch (InvalidOperationException e)
            {
                problems.Add(e.Message);
            }
        }

        if (problems.Count > 0)
        {
            return problems;
        }

        var options = provider.GetRequiredService(typeof(IOptions<>).MakeGenericType(type));
        try
        {
            _ = typeof(IOptions<>).MakeGenericType(type).GetProperty(nameof(IOptions<object>.Value))!.GetValue(options);
        }
        catch (TargetInvocationException e) when (e.InnerException is OptionsValidationException invalid)
        {
            problems.AddRange(invalid.Failures.Select(f => AsKeys(f, type, section)));
        }

        return problems;
    }

    /// <summary>Whether a key (relative to its section) names a setting: a property with a public setter, or an item of a list or map.</summary>
    private static bool Names(Type type, string path)
    {
        foreach (var part in path.Split(':'))
        {
            if (type != typeof(string) && typeof(IEnumerable).IsAssignableFrom(type))
            {
                return true;
            }

            var property = type.GetProperty(part, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase);
            if (property?.SetMethod is not { IsPublic: true })
            {
                return false;
            }

            type = property.PropertyType;
        }

        return true;
    }

    /// <summary>
    /// The generated validators say <c>MaxAttempts: The field JobsOptions.MaxAttempts must be between 1 and 100.</c>;
    /// the operator needs the key: <c>The field Atelier:Jobs:MaxAttempts must be between 1 and 100.</c> (The rules the
    /// options classes write themselves name their keys already.)
    /// </summary>
    internal static string AsKeys(string failure, Type type, string section) =>
        Regex.Replace(MemberPrefix().Replace(failure, "", 1), $@"\b{Regex.Escape(type.Name)}((?:\.\w+)+)",
            m => section + m.Groups[1].Value.Replace('.', ':'));

    [GeneratedRegex(@"^\w+(?:, \w+)*: ")]
    private static partial Regex MemberPrefix();
}
