from kit.migrations import run_env
from services.vault.models import Base

run_env(Base.metadata)
