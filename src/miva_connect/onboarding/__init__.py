"""The onboarding domain: sessions, store URL checks, credential validation, storage."""
