namespace Atelier.Runtime.Tests;
