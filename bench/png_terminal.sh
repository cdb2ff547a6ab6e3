# Sourced by the bench scripts that plot: png_terminal WIDTH,HEIGHT prints the gnuplot terminal
# to draw a PNG with: pngcairo when this gnuplot has it (gnuplot-nox on Debian does), else the
# libgd png terminal; noenhanced either way, so an underscore in a title stays an underscore.
png_terminal() {
  if gnuplot -e 'set terminal' 2>&1 | grep -q pngcairo; then
    echo "pngcairo noenhanced size $1 font 'sans,10'"
  else
    echo "png noenhanced size $1"
  fi
}
