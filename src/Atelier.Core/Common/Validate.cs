using System.Text.RegularExpressions;
using Atelier.Contracts.Errors;

namespace Atelier.Core.Common;

/// <summary>Input checks that answer <c>p_common_inputinvalid</c> naming the field. Limits are in docs/api.md.</summary>
public static partial class Validate
{
    [GeneratedRegex("^[a-z]([a-z0-9-]*[a-z0-9])?$")]
    private static partial Regex LabelPattern();

    [GeneratedRegex("^(?=.{1,253}$)([a-z0-9]([a-z0-9-]*[a-z0-9])?)(\\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")]
    private static partial Regex HostPattern();

    public const int NameMax = 64;
    public const int DescriptionMax = 2048;

    /// <summary>A required short name: trimmed, 1..max characters, no control characters.</summary>
    public static string Name(string? value, string field, int max = NameMax)
    {
        var v = value?.Trim();
        if (string.IsNullOrEmpty(v))
        {
            throw AtelierException.InvalidInput(field, "is required");
        }

        if (v.Length > max)
        {
            throw AtelierException.InvalidInput(field, $"is longer than {max} characters");
        }

        if (v.Any(char.IsControl))
        {
            throw AtelierException.InvalidInput(field, "contains control characters");
        }

        return v;
    }

    public static string? Optional(string? value, string field, int max = DescriptionMax)
    {
        if (value is null)
        {
            return null;
        }

        if (value.Length > max)
        {
            throw AtelierException.InvalidInput(field, $"is longer than {max} characters");
        }

        return value;
    }

    /// <summary>A caller-chosen identifier (account uid, operator id): 1..64 of letters, digits, '.', '_', '-', '@'.</summary>
    public static string Identifier(string? value, string field)
    {
        var v = Name(value, field);
        if (!IdentifierPattern().IsMatch(v))
        {
            throw AtelierException.InvalidInput(field, "may hold only letters, digits and . _ - @");
        }

        return v;
    }

    /// <summary>A DNS-1035 label (lowercase letters, digits, '-', starting with a letter, ending with a letter or digit, 1..max): names that become URLs and backend object names.</summary>
    public static string Label(string? value, string field, int max = 40)
    {
        var v = Name(value, field, max);
        if (!LabelPattern().IsMatch(v))
        {
            throw AtelierException.InvalidInput(field, "must be lowercase letters, digits and '-', start with a letter and end with a letter or digit");
        }

        return v;
    }

    /// <summary>A host name (RFC 1123: dot-separated labels of letters, digits and '-', at most 253 characters, at least two labels), lowercased.</summary>
    public static string HostName(string? value, string field)
    {
        var v = Name(value, field, 253).ToLowerInvariant().TrimEnd('.');
        if (!HostPattern().IsMatch(v) || v.Split('.').Any(l => l.Length > 63) || System.Net.IPAddress.TryParse(v, out _))
        {
            throw AtelierException.InvalidInput(field, $"'{v}' is not a valid host name");
        }

        return v;
    }

    public static int Range(int? value, string field, int min, int max, int fallback)
    {
        var v = value ?? fallback;
        if (v < min || v > max)
        {
            throw AtelierException.InvalidInput(field, $"must be between {min} and {max}");
        }

        return v;
    }

    /// <summary>A query value naming an enum member (any case); numbers and unknown names are refused.</summary>
    public static TEnum? EnumOrNull<TEnum>(string? value, string field) where TEnum : struct, Enum
    {
        if (value is null)
        {
            return null;
        }

        if (value.Length > 0 && !char.IsAsciiDigit(value[0]) && value[0] != '-' && Enum.TryParse<TEnum>(value, ignoreCase: true, out var parsed))
        {
            return parsed;
        }

        throw AtelierException.InvalidInput(field, "must be one of " + string.Join(", ", Enum.GetNames<TEnum>().Select(n => n.ToLowerInvariant())));
    }

    [GeneratedRegex("^[A-Za-z0-9._@-]{1,64}$")]
    private static partial Regex IdentifierPattern();
}
