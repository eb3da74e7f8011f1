# budget.gp — bench/run's plot of the economy run (bench/budget.png), drawn by
# gnuplot (Debian gnuplot-nox). bench/run writes the series into DATADIR and
# calls: gnuplot -e "datadir='…'; out='…'; heading='…'; xtitle='…'; limit=N" budget.gp
#   used_hitld.dat, used_naive.dat  x = seconds, y = calls used in the window (steps)
#   done_hitld.dat, done_naive.dat  x = seconds, y = requests visible (cumulative)

set terminal pngcairo size 1040,640 font "sans,9" noenhanced
set output out
set multiplot layout 2,1 title heading font "sans,11"
set grid lc rgb "#dddddd"
set key outside right bottom box
set xrange [0:*]
set xlabel xtitle

set title "API calls used in the current rate-limit window"
set ylabel "calls"
set yrange [0:limit * 1.08]
set arrow 1 from graph 0, first limit to graph 1, first limit nohead lc rgb "#aa0000" dt 2
set label 1 sprintf("limit %d", limit) at graph 1, first limit offset 1,0 left tc rgb "#aa0000"
plot datadir."/used_hitld.dat" using 1:2 with steps lw 1.5 lc rgb "#1f77b4" title "hitld", \
     datadir."/used_naive.dat" using 1:2 with steps lw 1.5 lc rgb "#e66e0a" title "naive client"

unset arrow 1
unset label 1
set key outside right top box
set title "Requests answered and visible to the client (cumulative)"
set ylabel "done"
set yrange [0:*]
plot datadir."/done_hitld.dat" using 1:2 with lines lw 1.5 lc rgb "#1f77b4" title "hitld", \
     datadir."/done_naive.dat" using 1:2 with lines lw 1.5 lc rgb "#e66e0a" title "naive client"
unset multiplot
