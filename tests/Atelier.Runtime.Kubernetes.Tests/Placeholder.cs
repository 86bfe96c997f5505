namespace Atelier.Runtime.Kubernetes.Tests;
