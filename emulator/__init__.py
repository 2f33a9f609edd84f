"""An offline stand-in for Microsoft Entra ID, IMDS, Microsoft Graph and Azure Resource Manager (no Django)."""
